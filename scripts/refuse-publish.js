'use strict'

// prepublishOnly: the repository's package.json has no optionalDependencies (they are added
// to the packed tarball only, see scripts/package.js), so a package published from here would
// find no binary anywhere. Publish the tarballs that `npm run package` writes instead.
console.error('npm publish: publish the tarballs in dist/ instead: run `npm run package`, then `npm publish dist/<platform tarball>` ' +
  'for each platform and `npm publish dist/tls-ticket-keys-<version>.tgz` last.')
process.exit(1)
