/**
 * Chaos on real processes: `esper up` (Weatherlight's supervisor, `esper serve tamiyo`, one
 * `esper serve trainer`) over the test run's Redis, and a process SIGKILLed mid-run. Tamiyo
 * is restarted after its backoff (visible in the supervisor's telemetry on the bus: the
 * crash, mode `degraded`, the restart, `operational` again) and the run completes; a
 * killed trainer is restarted and resumes from its last checkpoint; a service that keeps
 * crashing is stopped after its budget with a CRITICAL event, and `esper up` exits 1 with
 * nothing left running. The tests wait on output lines and telemetry, never on sleeps.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/cli/run.js';
import { TelemetryLevel, type TelemetryPacket } from '../../src/leyline/index.js';
import { isAlive, startEsper, type EsperProcess } from '../support/esper-process.js';
import { testRedisUrl } from '../support/redis-url.js';
import { cleanUp, openTestBus, systemUnderTest, watchTelemetry, writeConfig, type SystemUnderTest } from './support/distributed.js';

/** Long enough (a few hundred steps of a few ms) that a restarted service comes back mid-run. */
const LONG_SPIRALS = { dataset: 'spirals', hidden: [16, 16], epochs: 30, batchSize: 8, learningRate: 0.01 };
/** 1,000 training points (the synthetic default) in batches of 8. */
const STEPS_PER_EPOCH = 125;

let root: string;
const systems: SystemUnderTest[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-chaos-'));
});

afterAll(async () => {
  await Promise.all(systems.map((s) => cleanUp(s)));
  await rm(root, { recursive: true, force: true });
});

function newSystem(name: string, extra: Record<string, string> = {}): SystemUnderTest {
  const system = systemUnderTest(testRedisUrl(), path.join(root, name), extra);
  systems.push(system);
  return system;
}

const TAMIYO_SERVING = /\[tamiyo\] esper serve tamiyo: serving every run on \S+ with the \w+ policy \(pid (\d+)\)/g;

/** The pid of the `n`-th Tamiyo process (1-based) once it serves. */
async function tamiyoPid(child: EsperProcess, n: number): Promise<number> {
  await child.waitFor(new RegExp(`(?:${TAMIYO_SERVING.source}[\\s\\S]*){${n}}`));
  const pids = [...child.stderr().matchAll(TAMIYO_SERVING)].map((m) => Number(m[1]));
  return pids[n - 1] as number;
}

function events(packets: readonly TelemetryPacket[]): { description: string; level: TelemetryLevel; attributes: Record<string, string> }[] {
  return packets.flatMap((p) => p.events.map((e) => ({ description: e.description, level: e.level, attributes: e.attributes })));
}

async function upReport(out: string): Promise<RunReport> {
  return (JSON.parse(await readFile(path.join(out, 'record.json'), 'utf8')) as { report: RunReport }).report;
}

describe('chaos: esper up on real processes', () => {
  it('SIGKILL Tamiyo mid-run: restarted after its backoff (degraded, then operational), and the run completes', async () => {
    const system = newSystem('var-kill-tamiyo');
    const config = await writeConfig(root, 'long-tamiyo.json', LONG_SPIRALS);
    const out = path.join(root, 'out-kill-tamiyo');
    await using bus = openTestBus(system);
    const { result: child, packets } = await watchTelemetry(bus, 'weatherlight', async () => {
      const child = startEsper(['up', '--config', config, '--no-baseline', '--no-ui', '--out', out], system.env);
      const first = await tamiyoPid(child, 1);
      await child.waitFor(/\[trainer-1\] epoch 3\/30: train loss/);
      process.kill(first, 'SIGKILL');
      const second = await tamiyoPid(child, 2);
      expect(second).not.toBe(first);
      await child.exit;
      return child;
    });
    expect(await child.exit, child.stderr()).toMatchObject({ code: 0 });
    const report = await upReport(out);
    expect(report.interrupted).toBe(false);
    expect(report.grown.steps).toBe(30 * STEPS_PER_EPOCH);

    const seen = events(packets);
    const crash = seen.findIndex((e) => e.description === 'worker_error' && e.attributes['worker'] === 'tamiyo');
    const degraded = seen.findIndex((e) => e.description === 'mode_changed' && e.attributes['to'] === 'degraded');
    const restarted = seen.findIndex((e) => e.description === 'worker_restarted' && e.attributes['worker'] === 'tamiyo');
    const operational = seen.findIndex((e, i) => i > degraded && e.description === 'mode_changed' && e.attributes['to'] === 'operational');
    expect(crash, JSON.stringify(seen)).toBeGreaterThanOrEqual(0);
    expect(degraded).toBeGreaterThanOrEqual(0);
    expect(restarted).toBeGreaterThan(crash);
    expect(operational).toBeGreaterThan(degraded);
    // The periodic packets carry the backoff while it is waited out, then the restart count.
    const metric = (name: string) => packets.flatMap((p) => p.metrics.filter((m) => m.name === name).map((m) => m.value));
    expect(Math.max(...metric('weatherlight.worker.tamiyo.backoff_seconds'))).toBeGreaterThan(0);
    expect(Math.max(...metric('weatherlight.restarts_total'))).toBe(1);
  }, 300_000);

  it('SIGKILL the trainer mid-run: restarted, it resumes from its last checkpoint and completes the run', async () => {
    const system = newSystem('var-kill-trainer');
    const config = await writeConfig(root, 'long-trainer.json', LONG_SPIRALS);
    const out = path.join(root, 'out-kill-trainer');
    const child = startEsper(['up', '--config', config, '--no-baseline', '--no-ui', '--out', out], system.env);
    const pid = Number((await child.waitFor(/\[trainer-1\] esper serve trainer: pid (\d+)/))[1]);
    // Epoch 5 is under way: the checkpoints of epochs 1–4 are on disk.
    await child.waitFor(/\[trainer-1\] epoch 5\/30: /);
    process.kill(pid, 'SIGKILL');
    const resumed = await child.waitFor(/\[trainer-1\] esper run: resumed \S+ from its checkpoint at step (\d+)/);
    expect(Number(resumed[1])).toBeGreaterThanOrEqual(4 * STEPS_PER_EPOCH);
    const { code } = await child.exit;
    expect(code, child.stderr()).toBe(0);
    const report = await upReport(out);
    expect(report.interrupted).toBe(false);
    expect(report.distributed?.resumedFromStep).toBe(Number(resumed[1]));
    expect(report.grown.steps).toBe(30 * STEPS_PER_EPOCH);
    expect(report.grown.finalAccuracy).toBeGreaterThan(0.5);
  }, 300_000);

  it('a service that keeps crashing is stopped after its restart budget with a CRITICAL event, and esper up exits 1 with nothing left running', async () => {
    const system = newSystem('var-crash-loop', { ESPER_WEATHERLIGHT_RESTART_BUDGET: '1' });
    const config = await writeConfig(root, 'long-loop.json', { ...LONG_SPIRALS, epochs: 1000 });
    const out = path.join(root, 'out-crash-loop');
    await using bus = openTestBus(system);
    const { result: child, packets } = await watchTelemetry(bus, 'weatherlight', async () => {
      const child = startEsper(['up', '--config', config, '--no-baseline', '--no-ui', '--out', out], system.env);
      const trainer = Number((await child.waitFor(/\[trainer-1\] esper serve trainer: pid (\d+)/))[1]);
      process.kill(await tamiyoPid(child, 1), 'SIGKILL');
      process.kill(await tamiyoPid(child, 2), 'SIGKILL');
      await child.exit;
      return { child, trainer };
    });
    const { code } = await child.child.exit;
    expect(code, child.child.stderr()).toBe(1);
    expect(child.child.stderr()).toMatch(/service tamiyo kept crashing and was stopped after 1 restarts/);
    expect(child.child.stderr()).toContain('WEATHERLIGHT_SERVICE_BUDGET_EXHAUSTED');
    const exhausted = events(packets).find((e) => e.description === 'worker_budget_exhausted');
    expect(exhausted?.level).toBe(TelemetryLevel.CRITICAL);
    expect(exhausted?.attributes['worker']).toBe('tamiyo');
    // The trainer was stopped (it wrote its report, marked interrupted), not left running.
    expect(isAlive(child.trainer)).toBe(false);
    expect((await upReport(out)).interrupted).toBe(true);
  }, 300_000);
});
