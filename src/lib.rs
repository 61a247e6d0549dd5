pub mod key;
pub mod ring;
