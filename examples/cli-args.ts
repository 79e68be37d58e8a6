/** Command-line flags shared by the examples: which cluster, where to listen, whom to join. */
import { parseArgs } from 'node:util'
import type { MemberOptions } from '../src/options.js'
import type { Member } from '../src/member.js'
import type { View } from '../src/core/view.js'

export function memberArgs (extra: Record<string, { type: 'string' | 'boolean' }> = {}): { options: MemberOptions, values: Record<string, string | boolean | string[] | undefined> } {
  const { values } = parseArgs({
    options: {
      cluster: { type: 'string', default: 'example' },
      listen: { type: 'string', default: '127.0.0.1:0' },
      seed: { type: 'string', multiple: true, default: [] },
      name: { type: 'string' },
      masters: { type: 'string', default: '1' },
      ...extra
    }
  })
  const options: MemberOptions = {
    cluster: values.cluster as string,
    listen: values.listen as string,
    seeds: values.seed as string[],
    masters: Number(values.masters),
    ...(typeof values.name === 'string' ? { name: values.name } : {})
  }
  return { options, values }
}

/** One JSON line on stdout, with `type` and a Unix-ms `ts` (what the tests and people read). */
export function emit (type: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ type, ts: performance.timeOrigin + performance.now(), ...fields }) + '\n')
}

/** Resolves on the first SIGTERM or SIGINT. */
export async function untilSignal (): Promise<void> {
  await new Promise<void>(resolve => {
    process.once('SIGTERM', () => resolve())
    process.once('SIGINT', () => resolve())
  })
}

/** Prints the current view (a founder installs its first one inside start()) and every change. */
export function reportViews (member: Member): void {
  const print = (view: View): void => emit('view', { epoch: view.id.epoch, members: view.members.map(m => m.name) })
  if (member.view !== undefined) print(member.view)
  member.on('view', ({ view }) => print(view))
}
