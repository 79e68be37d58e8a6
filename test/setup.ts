// Trap 1 (VERSIONS.md): libp2p reaches Promise.withResolvers, missing on Node 20. Load the
// polyfill before any test file imports libp2p.
import '../src/polyfill.js'
