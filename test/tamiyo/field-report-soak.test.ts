/**
 * Soak: 100,000 field reports appended by a child process (group commit, 1,024 in flight)
 * that the test SIGKILLs at random points three times, restarting it each time to continue
 * where the store left off. After the last run, every report the child acknowledged before
 * any kill is in `reports()` exactly once, and the stored command ids are exactly
 * cmd-0 … cmd-99999 (no gap, no duplicate).
 *
 * The child runs as `node --import tsx <writer>` rather than `npx tsx <writer>`: npx
 * spawns the real process as a grandchild, which a SIGKILL of npx would not reach.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { afterAll, describe, expect, it } from 'vitest';
import { FieldReportStore } from '../../src/tamiyo/field-report-store.js';

const WRITER = path.resolve(import.meta.dirname, 'fixtures/field-report-writer.ts');
const TOTAL = 100_000;
const CONCURRENCY = 1024;
const KILLS = 3;

/** mulberry32: a small seeded PRNG, so a failing kill schedule can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface RunOutcome {
  readonly startCount: number;
  readonly acked: string[];
  readonly killed: boolean;
  readonly appended?: number;
  /** The writer's own time for its appends (startup excluded), when it finished. */
  readonly appendMs?: number;
  readonly elapsedMs: number;
}

/** Runs the writer; SIGKILLs it once it has acknowledged `killAfter` reports (if given). */
function runWriter(dir: string, killAfter?: number): Promise<RunOutcome> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(TOTAL), String(CONCURRENCY)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: string[] = [];
    let startCount = -1;
    let appended: number | undefined;
    let appendMs: number | undefined;
    let killed = false;
    let buffer = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        const [kind, a, b] = line.split(' ');
        if (kind === 'ack' && a !== undefined) acked.push(a);
        else if (kind === 'start') startCount = Number(a);
        else if (kind === 'done') {
          appended = Number(a);
          appendMs = Number(b);
        }
      }
      if (!killed && killAfter !== undefined && acked.length >= killAfter) killed = child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const elapsedMs = performance.now() - started;
      if (signal === 'SIGKILL' || code === 0) {
        resolve({ startCount, acked, killed: signal === 'SIGKILL', elapsedMs, ...(appended === undefined ? {} : { appended, appendMs }) });
      } else {
        reject(new Error(`writer exited with ${code}: ${stderr}`));
      }
    });
  });
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('FieldReportStore soak (child process, SIGKILL)', () => {
  it(`keeps every acknowledged report exactly once across ${KILLS} SIGKILLs of a writer appending ${TOTAL} reports`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'esper-fr-soak-'));
    dirs.push(dir);
    const seed = Math.floor(Math.random() * 2 ** 31);
    const random = rng(seed);
    const ackedBeforeKills = new Set<string>();
    const summary: string[] = [`seed ${seed}`];

    for (let k = 0; k < KILLS; k++) {
      // Kill somewhere inside this run's share of the work, at a random report.
      const killAfter = 2_000 + Math.floor(random() * 25_000);
      const run = await runWriter(dir, killAfter);
      expect(run.killed).toBe(true);
      // Everything acknowledged by earlier runs was recovered when this run started.
      expect(run.startCount).toBeGreaterThanOrEqual(ackedBeforeKills.size);
      for (const id of run.acked) ackedBeforeKills.add(id);
      summary.push(
        `run ${k + 1}: started at ${run.startCount}, killed after ${run.acked.length} acks (target ${killAfter}), ` +
          `${Math.round(run.acked.length / (run.elapsedMs / 1000))} acks/s incl. startup`,
      );
    }

    const last = await runWriter(dir);
    expect(last.killed).toBe(false);
    expect(last.startCount + (last.appended ?? 0)).toBe(TOTAL);
    summary.push(
      `final run: started at ${last.startCount}, appended ${last.appended} ` +
        `(${Math.round((last.appended ?? 0) / ((last.appendMs ?? 1) / 1000))} appends/s in the writer, ` +
        `${Math.round((last.appended ?? 0) / (last.elapsedMs / 1000))} appends/s incl. startup)`,
    );

    const store = await FieldReportStore.open(path.join(dir, 'field_reports.log'));
    try {
      const reports = store.reports();
      expect(reports).toHaveLength(TOTAL);
      expect(store.recovery.duplicateReports).toBe(0);
      const counts = new Map<string, number>();
      for (const r of reports) counts.set(r.reportId, (counts.get(r.reportId) ?? 0) + 1);
      const missing = [...ackedBeforeKills].filter((id) => counts.get(id) !== 1);
      expect(missing).toEqual([]);
      // Continuing from the stored count leaves no gap and no repeat.
      const commandIds = new Set(reports.map((r) => r.commandId));
      expect(commandIds.size).toBe(TOTAL);
      for (let i = 0; i < TOTAL; i += 997) expect(commandIds.has(`cmd-${i}`)).toBe(true);
      expect(commandIds.has(`cmd-${TOTAL - 1}`)).toBe(true);
      summary.push(`acknowledged before kills: ${ackedBeforeKills.size}; stored: ${reports.length}`);
    } finally {
      await store.close();
    }
    console.log(summary.join('\n'));
  }, 120_000);
});
