/** Summary statistics for benchmark samples (nearest-rank percentiles). */
export interface Summary { n: number, median: number, p99: number, min: number, max: number, mean: number }

export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number
}

export function summarize (samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b)
  const mean = sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)
  return { n: sorted.length, median: percentile(sorted, 50), p99: percentile(sorted, 99), min: sorted[0] ?? Number.NaN, max: sorted[sorted.length - 1] ?? Number.NaN, mean }
}

export function fmt (ms: number): string {
  return Number.isNaN(ms) ? '—' : ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)
}

/** The median, p99 and count of a summary: what a figure with a spread reports. */
export function medianP99 (s: Summary): { median: number, p99: number, n: number } {
  return { median: s.median, p99: s.p99, n: s.n }
}
