/**
 * The operator path: `esper command` signs a seed command and publishes it on Redis; a
 * training run's `CommandInbox` receives it and Kasmina verifies and applies it.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/command.js';
import { loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { CommandInbox } from '../../src/kasmina/index.js';
import { SeedLifecycleStage, type SystemStatePacket } from '../../src/leyline/index.js';
import { openBusFromSettings, type StreamBus } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import { mlpHost, type ExecutorContext } from '../../src/tolaria/index.js';
import { kasminaHarness } from '../kasmina/fixtures/harness.js';
import { testRedisUrl } from '../support/redis-url.js';

const SECRET = 'kasmina-test-secret-0123456789abcdef';
const cleanups: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  await initTensorBackend();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function capture(): {
  io: { stdout: { write(s: string): boolean }; stderr: { write(s: string): boolean } };
  out: () => string;
  err: () => string;
} {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) } },
    out: () => out,
    err: () => err,
  };
}

function redisSettings(prefix: string) {
  return loadSettings({
    env: {},
    overrides: { oona: { busUrl: testRedisUrl(), streamPrefix: prefix, blockMs: 50 }, security: { leylineKeys: `k1:${SECRET}` } },
  });
}

describe('esper command', () => {
  it('signs a germinate, publishes it on Redis, and the run applies it through Kasmina', async () => {
    const prefix = `test-cmd-${randomUUID().slice(0, 8)}:`;
    const settings = redisSettings(prefix);
    const host = mlpHost({ inputShape: [8], hidden: [16, 16], numClasses: 3, seed: 1, hostId: 'cmd-host' });
    cleanups.push(() => host.dispose());
    const h = await kasminaHarness({ host, trainingRunId: 'run-op' });
    cleanups.push(() => h.close());
    const bus: StreamBus = openBusFromSettings(settings, {
      keyRing: KeyRing.fromSettings(settings.security),
      telemetry: new MemoryTelemetrySink(),
    });
    cleanups.push(async () => {
      await bus.close();
    });
    const inbox = new CommandInbox({ bus, trainingRunId: 'run-op' });
    await inbox.start();
    cleanups.push(() => inbox.stop());

    const { io, out, err } = capture();
    const code = await runCommand(
      ['germinate', '--run', 'run-op', '--seed', 's1', '--site', 'hidden1', '--blueprint', 'BP001', '--json'],
      io,
      { settings },
    );
    expect(err()).toBe('');
    expect(code).toBe(0);
    const receipt = JSON.parse(out()) as { commandId: string; seed: string };
    expect(receipt.seed).toBe('s1');
    // A command for another run is acknowledged, not queued.
    await runCommand(['pause', '--run', 'run-other', '--seed', 's1'], capture().io, { settings });

    const deadline = AbortSignal.timeout(10_000);
    await inbox.waitForReceived(1, deadline);
    const command = await inbox.evaluateStep({} as SystemStatePacket, { signal: deadline });
    expect(command?.commandId).toBe(receipt.commandId);
    const context: ExecutorContext = { host, trainingRunId: 'run-op', epoch: 0, globalStep: 0, rng: seededRng(1) };
    await h.kasmina.apply(command!, context);
    expect(h.kasmina.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(host.hooks.has('hidden1')).toBe(true);
    expect(inbox.stats().queued).toBe(0);
  });

  it('refuses a memory bus, a missing action or a bad flag with exit code 2', async () => {
    const memory = loadSettings({ env: {}, overrides: { security: { leylineKeys: `k1:${SECRET}` } } });
    const a = capture();
    expect(await runCommand(['cull', '--run', 'r', '--seed', 's'], a.io, { settings: memory })).toBe(2);
    expect(a.err()).toContain('memory://');
    const b = capture();
    expect(await runCommand(['--run', 'r'], b.io, { settings: memory })).toBe(2);
    const c = capture();
    expect(await runCommand(['germinate', '--blend', 'sideways'], c.io, { settings: memory })).toBe(2);
    const d = capture();
    expect(await runCommand(['germinate', '--run', 'r', '--seed', 's'], d.io, { settings: redisSettings('x:') })).toBe(1);
    expect(d.err()).toMatch(/germinate needs a (blueprint|site) id/);
  });
});
