/** The scenarios of `conclave bench`, in the order `all` runs them. */
import type { Scenario } from './scenario.js'
import { failover } from './scenarios/failover.js'
import { join } from './scenarios/join.js'
import { coldStart } from './scenarios/cold-start.js'
import { scale } from './scenarios/scale.js'
import { broadcast } from './scenarios/broadcast.js'
import { rpc } from './scenarios/rpc.js'
import { state } from './scenarios/state.js'
import { filter } from './scenarios/filter.js'
import { rolling } from './scenarios/rolling.js'
import { dns } from './scenarios/dns.js'

export const SCENARIOS: readonly Scenario[] = [failover, join, coldStart, scale, broadcast, rpc, state, filter, rolling, dns]
