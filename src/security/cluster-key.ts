/**
 * The cluster key: a pre-shared 256-bit secret. With it, every connection of a member is
 * wrapped in libp2p's private-network protection (XSalsa20 keyed by it, under Noise, which stays
 * on), so a process without the key — or with another — cannot complete a connection: its
 * Noise handshake reads as noise. Same file format as IPFS/libp2p swarm keys:
 *
 *   /key/swarm/psk/1.0.0/
 *   /base16/
 *   <64 hex digits>
 *
 * The secret never leaves this object by accident: `toString`, `toJSON` and `util.inspect`
 * print `[cluster key <fingerprint>]`, and errors about a bad key say what is wrong, never
 * what came. The fingerprint (first 8 hex digits of SHA-256 of the secret) lets operators
 * compare keys without revealing them.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { inspect } from 'node:util'
import { InvalidOptionError } from '../errors.js'

const HEADER = '/key/swarm/psk/1.0.0/'
const CODEC = '/base16/'
const KEY_BYTES = 32

/** What went wrong with a key file's text; never includes the text. */
function problem (text: string): string | undefined {
  const lines = text.split(/\r\n|\r|\n/)
  if (lines[0] !== HEADER) return `a first line of "${HEADER}"`
  if (lines[1] !== CODEC) return `a second line of "${CODEC}" (the only encoding supported)`
  if (!/^[0-9a-fA-F]{64}$/.test(lines[2] ?? '')) return 'a third line of 64 hex digits (32 bytes)'
  if (lines.slice(3).some(l => l.trim() !== '')) return 'nothing after the third line'
  return undefined
}

export class ClusterKey {
  readonly #secret: Uint8Array
  readonly fingerprint: string

  private constructor (secret: Uint8Array) {
    this.#secret = secret
    this.fingerprint = createHash('sha256').update(secret).digest('hex').slice(0, 8)
  }

  /** A new random key. */
  static generate (): ClusterKey {
    return new ClusterKey(randomBytes(KEY_BYTES))
  }

  /**
   * Parses a key file's contents (text or bytes). Throws InvalidOptionError naming `option`,
   * saying what the text lacks and how long it was, never what it held.
   */
  static parse (contents: string | Uint8Array, option = 'clusterKey'): ClusterKey {
    const text = typeof contents === 'string' ? contents : contents instanceof Uint8Array ? Buffer.from(contents).toString('utf8') : undefined
    if (text === undefined) throw new InvalidOptionError(option, 'the contents of a key file (a string or Uint8Array)', contents)
    const wrong = problem(text)
    if (wrong !== undefined) throw new KeyFormatError(option, `a key file made by \`conclave keygen\`: ${wrong}`, text.length)
    const hex = text.split(/\r\n|\r|\n/)[2] as string
    return new ClusterKey(Uint8Array.from(Buffer.from(hex, 'hex')))
  }

  /** Reads and parses a key file; errors name the path, never the contents. */
  static read (path: string, option = '--key-file'): ClusterKey {
    let contents: string
    try {
      contents = readFileSync(path, 'utf8')
    } catch (err) {
      throw new InvalidOptionError(option, 'a readable key file', `${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`)
    }
    return ClusterKey.parse(contents, `${option} ${path}`)
  }

  /** Writes this key to `path`, readable by its owner only; refuses to overwrite a file. */
  write (path: string): void {
    writeFileSync(path, this.fileContents(), { mode: 0o600, flag: 'wx' })
  }

  /** The key file's text, in the swarm-key format the transport's protector reads. */
  fileContents (): string {
    return `${HEADER}\n${CODEC}\n${Buffer.from(this.#secret).toString('hex')}\n`
  }

  /** The key file's bytes, for the transport (transport/libp2p.ts). */
  fileBytes (): Uint8Array {
    return new TextEncoder().encode(this.fileContents())
  }

  toString (): string { return `[cluster key ${this.fingerprint}]` }
  toJSON (): string { return this.toString() }
  [inspect.custom] (): string { return this.toString() }
}

/** A malformed key: like InvalidOptionError, but "received" is only the length of what came. */
export class KeyFormatError extends InvalidOptionError {
  constructor (option: string, expected: string, length: number) {
    // The text itself is not kept: an error object is often logged whole.
    super(option, expected, `${length} characters`)
    this.name = 'KeyFormatError'
  }
}
