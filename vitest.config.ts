import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real sockets and libp2p start-up (trap 12: ~1 s of CPU to load the graph) are slow on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Two files at a time on the project's 2-core machine (vitest's default there is one): most
    // real-process tests wait on the network more than they compute, and their bounds are set
    // for a loaded machine.
    maxWorkers: 2
  }
})
