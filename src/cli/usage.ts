/** What every subcommand shares: one-line usage errors, flag parsing, and Ctrl-C handling. */
import { parseArgs, type ParseArgsConfig } from 'node:util'

type Options = NonNullable<ParseArgsConfig['options']>

/** A bad command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** Parses `args` strictly (no positionals); a bad command line becomes one UsageError line. */
export function parseCommandLine<O extends Options> (args: string[], options: O): ReturnType<typeof parseArgs<{ args: string[], options: O, strict: true, allowPositionals: false }>>['values'] {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values
  } catch (err) {
    // parseArgs' messages may span lines
    throw new UsageError((err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' '))
  }
}

/** A whole number from `lo` to `hi` given for `--flag`. */
export function wholeNumber (flag: string, text: string, lo: number, hi: number): number {
  if (!/^\d+$/.test(text) || Number(text) < lo || Number(text) > hi) throw new UsageError(`--${flag}: expected a whole number from ${lo} to ${hi}, got "${text}"`)
  return Number(text)
}

/** SIGINT/SIGTERM abort `signal` (a long run stops early and still reports) until `dispose()`. */
export function interruptible (): { readonly signal: AbortSignal, readonly interrupted: () => boolean, readonly dispose: () => void } {
  const controller = new AbortController()
  let interrupted = false
  const onSignal = (): void => { interrupted = true; controller.abort(new Error('interrupted')) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  return {
    signal: controller.signal,
    interrupted: () => interrupted,
    dispose: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal) }
  }
}
