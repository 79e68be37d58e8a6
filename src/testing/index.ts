/** Test helpers for users' own tests: a deterministic simulation of a cluster, a manual clock. */
export { Simulation, type SimulationOptions, type SimNode, type NodeState } from './simulation.js'
export { checkInvariants, ALL_INVARIANTS, epochsNeverDecrease, oneCoordinatorPerGroup, atMostNMasters, coordinatorIsOldest } from './invariants.js'
export { seededRandom } from './random.js'
export { ManualClock } from './manual-clock.js'
