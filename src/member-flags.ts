/**
 * Node flags for a process that runs one member (`bin/conclave.js` has the same in its
 * shebang; keep the two in step). Measured on this project's 2-core machine, idle member:
 *  - `--max-semi-space-size=4`: a member's garbage is small and short-lived. V8's default
 *    16 MiB semi-spaces hold on to about 12 MiB more RSS in an idle member; 4 MiB ones cost an
 *    idle member nothing over 1 MiB ones (the young generation grows only under load), while a
 *    member sending or receiving broadcasts at full speed spends about a third as long in
 *    scavenges as with 1 MiB (each scavenge copies the messages still waiting for an ack).
 *  - `--no-memory-reducer`: with it on, V8 runs full mark-compact collections every few seconds
 *    of low activity, to shrink a heap that does not grow; that was 0.45 % of a core of a lone
 *    member's 0.7 % (perf: ConcurrentMarking, MarkCompactCollector), for about 4 MiB of RSS.
 * An application that embeds a member in its own process chooses its own flags.
 */
export const MEMBER_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=4', '--no-memory-reducer'])
