/** What a figure was measured on, recorded with every result, and per-process CPU and memory from /proc. */
import { cpus, loadavg, totalmem, platform, release } from 'node:os'
import { readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

export interface Machine {
  readonly cores: number
  readonly cpu: string | undefined
  readonly memoryGiB: number
  readonly node: string
  readonly os: string
  /** 1, 5 and 15 minute load averages when the run started. */
  readonly loadavg: readonly number[]
}

export function machine (): Machine {
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    os: `${platform()} ${release()}`,
    loadavg: loadavg().map(l => +l.toFixed(2))
  }
}

export function describeMachine (m: Machine): string {
  return `${m.cores} cores${m.cpu !== undefined ? ` (${m.cpu.trim()})` : ''}, ${m.memoryGiB} GiB, Node ${m.node}, load ${m.loadavg.join(' ')}`
}

let ticksPerSecond: number | undefined
function clockTicks (): number {
  if (ticksPerSecond === undefined) {
    try { ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100 } catch { ticksPerSecond = 100 }
  }
  return ticksPerSecond
}

/** CPU seconds (user + system) a process has used, and its resident memory in MiB; undefined if it is gone. Linux only (/proc). */
export function processUsage (pid: number): { cpuS: number, rssMiB: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command name (field 2) may contain spaces: split after its closing parenthesis
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cpuS = (Number(fields[11]) + Number(fields[12])) / clockTicks()
    const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return { cpuS, rssMiB: rss === null ? Number.NaN : Number(rss[1]) / 1024 }
  } catch {
    return undefined
  }
}
