//! Retired and destroyed keys leave no copy of their secrets in freed heap memory.
//!
//! The global allocator of this test binary scans every block before it is freed (or moved
//! by `realloc`) for the secrets of keys the test has seen, and counts every block that still
//! holds one. A ring then lives through everything that makes, moves and drops keys: explicit
//! keys installed and replaced, a list of keys growing, rotation past the bound on held keys,
//! epochs going by, the clock stepping back, `destroy()`. Stack copies are out of its reach
//! (as they are for the zeroize crate).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use tls_ticket_keys::testing::DerivedKeys;
use tls_ticket_keys::testing::FallbackRoot;
use tls_ticket_keys::testing::{Cipher, TicketKey};
use tls_ticket_keys::testing::{Ring, Schedule};

const SECRET_PROBE: usize = 16;
const MAX_WATCHED: usize = 1024;

struct Watched {
    count: usize,
    secrets: [[u8; SECRET_PROBE]; MAX_WATCHED],
}

static WATCHED: Mutex<Watched> = Mutex::new(Watched { count: 0, secrets: [[0; SECRET_PROBE]; MAX_WATCHED] });
static LEAKED_BLOCKS: AtomicUsize = AtomicUsize::new(0);
/// Off before asserting: a failing assertion's backtrace frees megabytes that need no scan.
static SCANNING: AtomicBool = AtomicBool::new(true);

struct ScanningAllocator;

/// Whether the block holds the first bytes of a watched key's HMAC secret.
unsafe fn holds_a_secret(ptr: *const u8, size: usize) -> bool {
    if size < SECRET_PROBE || !SCANNING.load(Ordering::Relaxed) {
        return false;
    }
    // try_lock: the allocator may be entered while this thread holds the lock (never here, but
    // a deadlock inside an allocator would hang the test rather than fail it).
    let Ok(watched) = WATCHED.try_lock() else { return false };
    let block = unsafe { std::slice::from_raw_parts(ptr, size) };
    watched.secrets[..watched.count].iter().any(|s| block.windows(SECRET_PROBE).any(|w| w == s))
}

unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe {
            if holds_a_secret(ptr, layout.size()) {
                LEAKED_BLOCKS.fetch_add(1, Ordering::SeqCst);
            }
            System.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe {
            if holds_a_secret(ptr, layout.size()) {
                LEAKED_BLOCKS.fetch_add(1, Ordering::SeqCst);
            }
            System.realloc(ptr, layout, new_size)
        }
    }
}

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

/// Watches the HMAC secret of a key given in the ring's layout.
fn watch(layout: &[u8]) {
    watch_bytes(&layout[16..16 + SECRET_PROBE]);
}

fn watch_bytes(secret: &[u8]) {
    let mut probe = [0u8; SECRET_PROBE];
    probe.copy_from_slice(&secret[..SECRET_PROBE]);
    let mut watched = WATCHED.lock().unwrap();
    let i = watched.count;
    assert!(i < MAX_WATCHED, "watching too many keys");
    watched.secrets[i] = probe;
    watched.count += 1;
}

fn watch_current(ring: &Ring, now: u64) {
    watch(&ring.current_layout(now).unwrap());
}

/// Explicit keys with a recognisable secret per `seed`, built without a growing buffer.
fn explicit_keys(cipher: Cipher, seeds: std::ops::Range<u8>) -> Vec<TicketKey> {
    let mut keys = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let mut layout = [0u8; 80];
        let layout = &mut layout[..cipher.layout_len()];
        for (i, b) in layout.iter_mut().enumerate() {
            *b = seed ^ (i as u8).wrapping_mul(29) ^ 0x5a;
        }
        watch(layout);
        keys.push(TicketKey::from_layout(cipher, layout).unwrap());
        layout.fill(0);
    }
    keys
}

fn leaked() -> usize {
    LEAKED_BLOCKS.load(Ordering::SeqCst)
}

// One test, so that nothing else runs in this binary while it counts.
#[test]
fn no_freed_block_holds_a_retired_or_destroyed_key() {
    // The scanner itself: a buffer freed without wiping is caught.
    let plain: Vec<u8> = explicit_keys(Cipher::Aes128Cbc, 200..201)[0].to_layout().to_vec();
    drop(plain);
    if leaked() != 1 {
        SCANNING.store(false, Ordering::Relaxed);
        panic!("the scanner missed a secret in a freed buffer");
    }
    LEAKED_BLOCKS.store(0, Ordering::SeqCst);

    let (interval, lifetime) = (10, 30);
    let schedule = Schedule::new(interval, lifetime).unwrap();
    let mut now = 1_000_000;

    // Random keys through their whole schedule, a rotate() loop up to the bound on held keys
    // (past it, rotate() is refused) and their expiry, and the clock stepping back.
    let ring = Ring::random(Cipher::Aes256Cbc, schedule, now).unwrap();
    for _ in 0..40 {
        watch_current(&ring, now);
        now += interval;
    }
    for _ in 0..300 {
        if ring.rotate(now).is_ok() {
            watch_current(&ring, now);
        }
    }
    now += lifetime + 1;
    ring.tick(now).unwrap();
    watch_current(&ring, now);
    now -= 100 * interval;
    watch_current(&ring, now);
    now += 10 * lifetime;
    ring.tick(now).unwrap();
    ring.destroy();

    // Explicit keys: installed (40 at once, so the key list grows), replaced, then destroyed.
    let ring = Ring::explicit(Cipher::Aes128Cbc, schedule, explicit_keys(Cipher::Aes128Cbc, 0..40), now).unwrap();
    ring.set_keys(explicit_keys(Cipher::Aes128Cbc, 40..41), now).unwrap();
    now += lifetime + 1;
    ring.tick(now).unwrap();
    ring.set_keys(explicit_keys(Cipher::Aes128Cbc, 41..81), now).unwrap();
    ring.destroy();

    // Keys derived from a secret, over epochs and dropped with the ring.
    let ring =
        Ring::with_source(Cipher::Aes256Cbc, schedule, Box::new(DerivedKeys::new(&[7u8; 32]).unwrap()), now).unwrap();
    for _ in 0..20 {
        watch_current(&ring, now);
        now += interval;
    }
    drop(ring);

    // AES and AES-GCM states on the heap, as a store's wrapper keeps one for its whole life:
    // dropped, they wipe their round keys (the crates' `zeroize` features), the first of
    // which is the key itself.
    {
        use aes::cipher::KeyInit;
        let key: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        watch_bytes(&key);
        drop(Box::new(aes::Aes256::new_from_slice(&key).unwrap()));
        drop(Box::new(aes::Aes128::new_from_slice(&key[..16]).unwrap()));
        drop(Box::new(aes_gcm::Aes256Gcm::new_from_slice(&key).unwrap()));
    }

    // A store-fed ring's fallback keys, derived for the epochs its feed missed, for past ones
    // at start, replaced by offered keys, and destroyed.
    let fallback = FallbackRoot::new(&[9u8; 32]).unwrap().keys("p:", interval);
    let ring = Ring::fed(Cipher::Aes256Cbc, schedule, Box::new(fallback), now).unwrap();
    ring.fall_back_now(true, now).unwrap();
    for i in 0..20u8 {
        watch_current(&ring, now);
        if i % 3 == 0 {
            ring.offer(now / interval, explicit_keys(Cipher::Aes256Cbc, 100 + i..101 + i)[0].clone(), now).unwrap();
            watch_current(&ring, now);
        }
        now += interval;
    }
    ring.destroy();

    SCANNING.store(false, Ordering::Relaxed);
    assert_eq!(leaked(), 0, "freed heap blocks still held key secrets");
}
