/** Unix milliseconds with sub-millisecond resolution, comparable across processes of one machine. */
export function wallClockMs (): number {
  return performance.timeOrigin + performance.now()
}
