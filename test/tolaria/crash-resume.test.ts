/**
 * Crash-resume acceptance: a training child process is SIGKILLed mid-epoch, a new child
 * resumes from the newest checkpoint, and every loss from there on equals that of an
 * uninterrupted run (bit for bit).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/train-child.ts');
const TRAIN_SIZE = 2400;
const CHECKPOINT_EVERY = 7;

type Line =
  | { step: number; loss: number }
  | { resumedFrom: number; cursor: { epoch: number; position: number } }
  | { done: string; globalStep: number };

interface Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly lines: Line[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function start(dir: string, mode: 'fresh' | 'resume', onLine?: (line: Line, child: ChildProcessWithoutNullStreams) => void): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, mode], { cwd: path.resolve(import.meta.dirname, '../..') });
  const lines: Line[] = [];
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  createInterface({ input: child.stdout }).on('line', (text) => {
    const line = JSON.parse(text) as Line;
    lines.push(line);
    onLine?.(line, child);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { process: child, lines, exited };
}

const stepLosses = (lines: readonly Line[]): Map<number, number> =>
  new Map(lines.flatMap((l) => ('step' in l ? [[l.step, l.loss] as [number, number]] : [])));

let crashDir: string;
let referenceDir: string;
beforeAll(async () => {
  crashDir = await mkdtemp(path.join(tmpdir(), 'esper-crash-'));
  referenceDir = await mkdtemp(path.join(tmpdir(), 'esper-crash-ref-'));
});
afterAll(async () => {
  await rm(crashDir, { recursive: true, force: true });
  await rm(referenceDir, { recursive: true, force: true });
});

describe('crash-resume', () => {
  it('a run killed with SIGKILL mid-epoch resumes from its last checkpoint and produces the same losses as an uninterrupted run', async () => {
    // 1. Train, and kill the process once it has passed step 23 (checkpoints at 7, 14, 21).
    let killedAfter = 0;
    const crashed = start(crashDir, 'fresh', (line, child) => {
      if ('step' in line && line.step >= 23 && killedAfter === 0) {
        killedAfter = line.step;
        child.kill('SIGKILL');
      }
    });
    const crash = await crashed.exited;
    expect(crash.signal).toBe('SIGKILL');
    const crashedSteps = stepLosses(crashed.lines);
    const lastSeen = Math.max(...crashedSteps.keys());
    expect(lastSeen).toBeLessThan(TRAIN_SIZE / 32); // still in the first epoch

    // 2. Resume from the newest checkpoint.
    const resumed = start(crashDir, 'resume');
    const resume = await resumed.exited;
    expect(resume.code, resume.stderr).toBe(0);
    const header = resumed.lines[0] as { resumedFrom: number; cursor: { epoch: number; position: number } };
    expect(header.resumedFrom % CHECKPOINT_EVERY).toBe(0);
    expect(header.resumedFrom).toBeGreaterThanOrEqual(21);
    expect(header.resumedFrom).toBeLessThanOrEqual(lastSeen);
    expect(header.cursor).toEqual({ seed: 11, epoch: 0, position: header.resumedFrom * 32 }); // mid-epoch
    const resumedSteps = stepLosses(resumed.lines);
    expect(Math.min(...resumedSteps.keys())).toBe(header.resumedFrom + 1);

    // 3. The uninterrupted reference.
    const reference = start(referenceDir, 'fresh');
    expect((await reference.exited).code).toBe(0);
    const referenceSteps = stepLosses(reference.lines);
    expect(resumedSteps.size + header.resumedFrom).toBe(referenceSteps.size);
    for (const [step, loss] of resumedSteps) expect([step, loss]).toEqual([step, referenceSteps.get(step)]);
    // The killed run agreed with the reference too, up to where it died.
    for (const [step, loss] of crashedSteps) expect(loss).toBe(referenceSteps.get(step));
    console.info(
      `[crash-resume] killed after step ${lastSeen}, resumed from checkpoint at step ${header.resumedFrom}, ${resumedSteps.size} identical steps after`,
    );
  }, 60_000);
});
