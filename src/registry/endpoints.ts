/**
 * Endpoints: named URLs a member publishes (`{ http: 'http://127.0.0.1:9090' }`), as Fuse's
 * `master:FD:jetty:http://…` registers a URI under a cluster id. Validation and templating live
 * here; propagation is registry.ts, lookup in view order is lookup.ts.
 */
import { InvalidOptionError } from '../errors.js'

/** Service name → URL. */
export type Endpoints = Readonly<Record<string, string>>

const SERVICE_NAME = /^[A-Za-z0-9._-]{1,64}$/
const MAX_SERVICES = 64
const MAX_URL_LENGTH = 2048

/** Checks a service name; throws InvalidOptionError naming `option`. */
export function validateService (option: string, service: unknown): string {
  if (typeof service !== 'string' || !SERVICE_NAME.test(service)) throw new InvalidOptionError(option, '1–64 letters, digits, ".", "_" or "-"', service)
  return service
}

/** Checks one endpoint URL (any scheme with a host: http, https, tcp, ...; WHATWG URL); returns it normalized. */
export function validateUrl (option: string, url: unknown): string {
  // A host is required: "localhost:80" parses as a URL of scheme "localhost:", which no
  // client could reach.
  const parsed = typeof url === 'string' && url.length <= MAX_URL_LENGTH && URL.canParse(url) ? new URL(url) : undefined
  if (parsed === undefined || parsed.host === '') {
    throw new InvalidOptionError(option, `an absolute URL with a host (e.g. "http://127.0.0.1:9090") of at most ${MAX_URL_LENGTH} characters`, url)
  }
  return parsed.href
}

/** Checks a whole endpoint map; returns a frozen copy with normalized URLs. */
export function validateEndpoints (option: string, endpoints: unknown): Endpoints {
  if (typeof endpoints !== 'object' || endpoints === null || Array.isArray(endpoints)) throw new InvalidOptionError(option, 'an object of service name → URL', endpoints)
  const entries = Object.entries(endpoints)
  if (entries.length > MAX_SERVICES) throw new InvalidOptionError(option, `at most ${MAX_SERVICES} services`, endpoints)
  const out: Record<string, string> = {}
  for (const [service, url] of entries) {
    validateService(`${option}.${service}`, service)
    out[service] = validateUrl(`${option}.${service}`, url)
  }
  return Object.freeze(out)
}

/** Non-throwing check for endpoint maps from the network: valid, or undefined. */
export function parseEndpoints (raw: unknown): Endpoints | undefined {
  try { return validateEndpoints('endpoints', raw) } catch { return undefined }
}

/**
 * Expands `{{name}}` placeholders (the property-placeholder syntax of the Fuse template) from
 * `vars` first, then from the environment: one configuration serves every server of a cluster,
 * e.g. `http://{{HOST}}:{{PORT}}` with `PORT=9090` on one server and `PORT=9191` on the other.
 * `{{name:-default}}` gives a default. A placeholder with no value throws InvalidOptionError.
 */
export function expandTemplate (option: string, template: string, vars: Readonly<Record<string, string | undefined>> = {}, env: NodeJS.ProcessEnv = process.env): string {
  return template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(?::-([^}]*?))?\s*\}\}/g, (_whole, name: string, fallback: string | undefined) => {
    const value = vars[name] ?? env[name] ?? fallback
    if (value === undefined) throw new InvalidOptionError(option, `a value for the placeholder {{${name}}} (set it with --set ${name}=… or the environment variable ${name}, or write {{${name}:-default}})`, template)
    return value
  })
}

/** Expands every template of an endpoint map, then validates the result. */
export function expandEndpoints (option: string, templates: Readonly<Record<string, string>>, vars: Readonly<Record<string, string | undefined>> = {}, env: NodeJS.ProcessEnv = process.env): Endpoints {
  const expanded: Record<string, string> = {}
  for (const [service, template] of Object.entries(templates)) {
    if (typeof template !== 'string') throw new InvalidOptionError(`${option}.${service}`, 'a URL template string', template)
    expanded[service] = expandTemplate(`${option}.${service}`, template, vars, env)
  }
  return validateEndpoints(option, expanded)
}
