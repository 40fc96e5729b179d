/**
 * Helpers of the supervisor tests: timers fired by hand, an output collector, a poll with a
 * deadline (no sleeps), and tiny child scripts run with `process.execPath`.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TelemetryPacket } from '../../src/leyline/index.js';
import type { SupervisorTimers } from '../../src/weatherlight/index.js';

/** A timer the test fires itself. */
export interface ManualTimer {
  readonly delayMs: number;
  readonly fire: () => void;
  done: boolean;
}

/** {@link SupervisorTimers} that only fire when the test says so. */
export class ManualTimers implements SupervisorTimers {
  readonly timers: ManualTimer[] = [];

  setTimer(delayMs: number, callback: () => void): () => void {
    const timer: ManualTimer = {
      delayMs,
      done: false,
      fire: () => {
        if (timer.done) return;
        timer.done = true;
        callback();
      },
    };
    this.timers.push(timer);
    return () => {
      timer.done = true;
    };
  }

  /** Timers not yet fired or cancelled whose delay is below `maxDelayMs`. */
  pending(maxDelayMs = Number.POSITIVE_INFINITY): ManualTimer[] {
    return this.timers.filter((t) => !t.done && t.delayMs < maxDelayMs);
  }
}

/** Polls `condition` every 5 ms until it holds; fails after `deadlineMs`. */
export async function until<T>(condition: () => T | undefined | false, what: string, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Collects children's prefixed output lines. */
export class OutputCollector {
  readonly lines: string[] = [];
  readonly stdout = { write: (chunk: string) => this.lines.push(...chunk.split('\n').filter((l) => l !== '')) };
  readonly stderr = this.stdout;
}

/** Events of every packet with `description`, with the packet they came in. */
export function eventsIn(packets: readonly TelemetryPacket[], description: string) {
  return packets.flatMap((packet) => packet.events.filter((e) => e.description === description).map((event) => ({ packet, event })));
}

/** The value of metric `name` in `packet`, `undefined` when absent. */
export function metric(packet: TelemetryPacket, name: string): number | undefined {
  return packet.metrics.find((m) => m.name === name)?.value;
}

/** Child scripts (ES modules) written to `dir`; each takes its arguments from argv. */
export async function writeScripts(dir: string) {
  const scripts = {
    /** argv[2] = counter file. Crashes (exit 3, "boom <n>" on stderr) while n < argv[3], then runs until SIGTERM. */
    crashThenRun: `
      import { readFileSync, writeFileSync } from 'node:fs';
      const [file, crashes] = [process.argv[2], Number(process.argv[3])];
      let n = 0;
      try { n = Number(readFileSync(file, 'utf8')); } catch {}
      writeFileSync(file, String(n + 1));
      if (n < crashes) { process.stderr.write('boom ' + (n + 1) + '\\n'); process.exit(3); }
      process.on('SIGTERM', () => process.exit(0));
      setInterval(() => {}, 1000);
      process.stdout.write('ready\\n');
    `,
    /** Always fails at once with a message on stderr. */
    alwaysCrash: `
      process.stderr.write('starting\\n');
      process.stderr.write('fatal: cannot reach the bus\\n');
      process.exit(1);
    `,
    /** Says ready; on SIGTERM says draining and exits 0. */
    cooperative: `
      process.on('SIGTERM', () => { process.stdout.write('draining\\n'); setImmediate(() => process.exit(0)); });
      setInterval(() => {}, 1000);
      process.stdout.write('ready\\n');
    `,
    /** Says ready and ignores SIGTERM. */
    stubborn: `
      process.on('SIGTERM', () => { process.stdout.write('ignoring SIGTERM\\n'); });
      setInterval(() => {}, 1000);
      process.stdout.write('ready\\n');
    `,
    /** Does its job and exits 0. */
    oneShot: `
      process.stdout.write('done\\n');
    `,
  };
  const paths = {} as Record<keyof typeof scripts, string>;
  for (const [name, body] of Object.entries(scripts)) {
    const file = path.join(dir, `${name}.mjs`);
    await writeFile(file, body);
    paths[name as keyof typeof scripts] = file;
  }
  return paths;
}
