/**
 * The gate of every test file that needs network namespaces: where they cannot be made the
 * file's real-namespace tests are skipped with the reason printed, except under
 * CONCLAVE_REQUIRE_NETNS=1 (CI sets it), where one failing test says why instead, so that a
 * runner without root or iproute2 cannot pass by skipping them.
 */
import { it } from 'vitest'
import { netnsUnavailable } from '../src/testing/netns.js'

/** Why the tests of `what` cannot run here, or undefined when they can. Call at the top level of a test file. */
export async function netnsGate (what: string, opts: { nftables?: boolean } = {}): Promise<string | undefined> {
  const why = await netnsUnavailable(opts)
  if (why === undefined) return undefined
  if (process.env.CONCLAVE_REQUIRE_NETNS === '1') {
    it(`${what}: network namespaces can be made here (CONCLAVE_REQUIRE_NETNS=1)`, () => {
      throw new Error(`${what} cannot run: ${why}`)
    })
  } else {
    console.warn(`${what} skipped: ${why}`)
  }
  return why
}
