/**
 * A bound on concurrent connection attempts, with two priorities.
 *
 * Why: a member joining a group of N dials all N − 1 members at once to build the full mesh.
 * Each new connection costs a noise handshake (X25519, Ed25519) and a round of identify,
 * gossipsub and stream negotiation on both ends, tens of ms of CPU on a loaded 2-core machine.
 * At 40–50 members, 49 at once kept the joiner's event loop from reading its sockets for over
 * half a second, so the monitors suspected, and sometimes excluded, the member they had just
 * admitted. With a few at a time the same work is spread out, and heartbeats get through.
 * Urgent attempts (a frame is waiting, say the join request) go before mesh-building ones.
 */
export class DialSlots {
  private inFlight = 0
  private readonly urgent: Array<() => void> = []
  private readonly background: Array<() => void> = []

  constructor (private readonly limit: number) {}

  /** Resolves when a slot is free; call the returned function once the attempt is over. */
  async acquire (urgent: boolean): Promise<() => void> {
    if (this.inFlight < this.limit) {
      this.inFlight++
    } else {
      await new Promise<void>(resolve => { (urgent ? this.urgent : this.background).push(resolve) })
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.urgent.shift() ?? this.background.shift()
      if (next !== undefined) next() // the slot passes on
      else this.inFlight--
    }
  }

  /** Lets every waiter through (on stop: each then finds the transport stopped). */
  drain (): void {
    for (const next of [...this.urgent.splice(0), ...this.background.splice(0)]) next()
  }
}
