/**
 * `--config <file.json>` for `conclave member`: one file serves every server of a cluster, as
 * the Fuse blueprint template does with `{{portNumber}}`. Every string in the file may hold
 * `{{NAME}}` or `{{NAME:-default}}` placeholders, filled from `--set NAME=value` flags first,
 * then from the environment (see registry/endpoints.ts#expandTemplate).
 *
 *   { "cluster": "FD", "listen": "127.0.0.1:{{GOSSIP_PORT:-0}}", "seeds": ["127.0.0.1:7000"],
 *     "endpoints": { "http": "http://{{HOST:-127.0.0.1}}:{{PORT}}/" } }
 */
import { readFileSync } from 'node:fs'
import { expandTemplate } from '../registry/endpoints.js'
import { UsageError } from './usage.js'

/** What a config file may set; command-line flags override each. */
export interface MemberConfig {
  cluster?: string
  listen?: string
  seeds?: string[]
  /** The address peers dial, e.g. "{{POD_IP}}" (the member's `advertise` option). */
  advertise?: string | string[]
  /** DNS servers for host-name and SRV seeds (the member's `dns.servers`). */
  dnsServers?: string[]
  /** How often DNS seeds are resolved again (the member's `dns.refreshMs`). */
  dnsRefreshMs?: number
  /** Multicast DNS discovery on the local network (the member's `mdns` option). */
  mdns?: boolean
  name?: string
  masters?: number
  splitBrain?: string
  quorum?: number
  /** Path of the cluster key file (never the key itself: a config file is often shared). */
  keyFile?: string
  endpoints?: Record<string, string>
  /** Durable state directory (one per member: a shared file gives each its own with a placeholder). */
  stateDir?: string
  bootstrapExpect?: number
  /** Timing overrides, e.g. { "suspectAfterMs": 2000 } (checked as the member's `timing` option). */
  timing?: Record<string, number>
}

const KEYS = new Set(['cluster', 'listen', 'seeds', 'advertise', 'dnsServers', 'dnsRefreshMs', 'mdns', 'name', 'masters', 'splitBrain', 'quorum', 'keyFile', 'endpoints', 'stateDir', 'bootstrapExpect', 'timing'])

/** `NAME=value` flags as a map; a flag without `=` is a usage error. */
export function parseAssignments (flag: string, items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const item of items) {
    const eq = item.indexOf('=')
    if (eq <= 0) throw new UsageError(`${flag} expects NAME=value, got "${item}"`)
    out[item.slice(0, eq)] = item.slice(eq + 1)
  }
  return out
}

export function loadConfig (path: string, vars: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv = process.env): MemberConfig {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    throw new UsageError(`--config ${path}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`)
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UsageError(`--config ${path}: expected a JSON object`)
  for (const key of Object.keys(raw)) {
    if (!KEYS.has(key)) throw new UsageError(`--config ${path}: unknown key "${key}"; keys: ${[...KEYS].join(', ')}`)
  }
  return expandStrings(raw, '', vars, env) as MemberConfig
}

/** Expands placeholders in every string of a JSON value; `at` names the place in errors. */
function expandStrings (value: unknown, at: string, vars: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') return expandTemplate(at, value, vars, env)
  if (Array.isArray(value)) return value.map((v, i) => expandStrings(v, `${at}[${i}]`, vars, env))
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandStrings(v, at === '' ? k : `${at}.${k}`, vars, env)]))
  }
  return value
}
