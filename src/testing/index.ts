/** Test helpers for users' own tests: a deterministic simulation of a cluster, a manual clock. */
export { Simulation, type SimulationOptions, type SimNode, type NodeState } from './simulation.js'
export { checkInvariants, ALL_INVARIANTS, MAJORITY_INVARIANTS, epochsNeverDecrease, oneCoordinatorPerGroup, atMostNMasters, atMostNMastersGlobally, coordinatorIsOldest, oneMembershipPerEpoch, epochsGrowAcrossRestarts, fencingTokensGrow } from './invariants.js'
export { seededRandom } from './random.js'
export { ManualClock } from './manual-clock.js'
export { runSchedule, type FaultScheduleOptions, type ScheduleResult, type FaultKind } from './schedules.js'
export type { NodeOptions, NodeClock } from './simulation.js'
