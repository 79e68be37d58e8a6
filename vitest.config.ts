import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Trap 1: libp2p needs Promise.withResolvers, which Node 20 lacks.
    setupFiles: ['test/setup.ts'],
    // Real sockets and libp2p start-up (trap 12: ~1 s of CPU to load the graph) are slow on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks'
  }
})
