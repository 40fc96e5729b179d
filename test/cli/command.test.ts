/**
 * The operator path over real Redis: `esper command` signs a seed command, publishes it and
 * waits for the acknowledgement of the run it names — here an in-process
 * `esper train --grow --listen` — and exits by what became of it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { COMMAND_HELP, CommandExit, runCommand } from '../../src/cli/command.js';
import { runTrain } from '../../src/cli/train.js';
import { loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { buildOperatorCommand, OperatorAction } from '../../src/kasmina/index.js';
import { AdaptationCommandSchema, BusMessageType, CommandAckStatus } from '../../src/leyline/index.js';
import { openBusFromSettings } from '../../src/oona/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { createHost } from '../../src/tolaria/index.js';
import { waitFor } from '../oona/fixtures/waits.js';
import { testRedisUrl } from '../support/redis-url.js';

const SECRET = 'kasmina-test-secret-0123456789abcdef';
const cleanups: (() => Promise<unknown> | unknown)[] = [];

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

function redisSettings(prefix: string, options: { varDir?: string } = {}): EsperSettings {
  return loadSettings({
    env: {},
    overrides: {
      oona: { busUrl: testRedisUrl(), streamPrefix: prefix, blockMs: 50 },
      security: { leylineKeys: `k1:${SECRET}` },
      // A loaded machine must not push the run into conservative mode (no controller calls).
      tolaria: { hookBudgetMs: 60_000, epochBudgetMs: 600_000 },
      // Seeds stay in TRAINING: the site stays occupied while the test runs.
      kasmina: { trainingSteps: 1_000_000 },
      ...(options.varDir === undefined ? {} : { storage: { varDir: options.varDir } }),
    },
  });
}

describe('esper command', () => {
  it('is acknowledged by a listening run: an applied germinate exits 0, a forged command is REJECTED, a refused germinate exits 3', async () => {
    const prefix = `test-cmd-${randomUUID().slice(0, 8)}:`;
    const varDir = await mkdtemp(path.join(tmpdir(), 'esper-command-'));
    cleanups.push(() => rm(varDir, { recursive: true, force: true }));
    const settings = redisSettings(prefix, { varDir });
    const run = `run-${randomUUID().slice(0, 8)}`;
    const stop = new AbortController();
    const train = capture();
    const training = runTrain(['--grow', '--listen', '--epochs', '50', '--run-id', run, '--json'], train.io, {
      settings,
      signal: stop.signal,
    });
    cleanups.push(async () => {
      stop.abort();
      await training;
    });
    await waitFor(() => train.err().includes('listening for commands'), 'the run to listen', 60_000);

    const applied = capture();
    const code = await runCommand(
      ['germinate', '--run', run, '--seed', 's1', '--site', 'hidden1', '--blueprint', 'BP001', '--timeout', '60', '--json'],
      applied.io,
      { settings },
    );
    expect(applied.err()).toBe('');
    expect(code).toBe(CommandExit.APPLIED);
    expect(JSON.parse(applied.out())).toMatchObject({ action: 'germinate', run, seed: 's1', status: 'APPLIED', reason: '' });

    // Forged: published with the bus key, but signed with a key the run does not hold (same key id).
    const keyRing = KeyRing.fromSettings(settings.security);
    const bus = openBusFromSettings(settings, { keyRing, telemetry: new MemoryTelemetrySink() });
    cleanups.push(() => bus.close());
    const forger = new HmacSigner(new KeyRing([{ keyId: 'k1', secret: Buffer.from('a-forger-secret-0123456789abcdefgh', 'utf8') }]));
    const forged = forger.sign(
      AdaptationCommandSchema,
      buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId: run, seedId: 's1' }),
    );
    const reply = await bus.request(forged, { replyType: BusMessageType.COMMAND_ACK, timeoutMs: 60_000 });
    expect(reply.message).toMatchObject({ commandId: forged.commandId, status: CommandAckStatus.REJECTED, reason: 'invalid_signature' });

    // A germinate G0 refuses (the site is taken) is acknowledged NOT_APPLIED with the gate and its reason.
    const occupied = capture();
    const occupiedCode = await runCommand(
      ['germinate', '--run', run, '--seed', 's2', '--site', 'hidden1', '--blueprint', 'BP001', '--timeout', '60'],
      occupied.io,
      { settings },
    );
    expect(occupiedCode).toBe(CommandExit.NOT_APPLIED);
    expect(occupied.err()).toContain('NOT_APPLIED — SEED_GATE_G0_SANITY: site occupied');

    stop.abort();
    expect(await training).toBe(130);
    const summary = JSON.parse(train.out()) as { seeds: { commandsApplied: number } };
    expect(summary.seeds.commandsApplied).toBe(1);
  }, 180_000);

  it('exits 4 after its timeout when no trainer listens, saying so', async () => {
    const settings = redisSettings(`test-cmd-${randomUUID().slice(0, 8)}:`);
    const { io, err } = capture();
    const started = Date.now();
    const code = await runCommand(['cull', '--run', 'nobody', '--seed', 's1', '--timeout', '0.5'], io, { settings });
    expect(code).toBe(CommandExit.NO_ACK);
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(err()).toContain('no acknowledgement came within 0.5 s: no trainer may be listening');
  });

  it('refuses a memory bus, a missing action, bad flags and a bad timeout with exit code 2', async () => {
    const memory = loadSettings({ env: {}, overrides: { security: { leylineKeys: `k1:${SECRET}` } } });
    const a = capture();
    expect(await runCommand(['cull', '--run', 'r', '--seed', 's'], a.io, { settings: memory })).toBe(CommandExit.USAGE);
    expect(a.err()).toContain('memory://');
    expect(await runCommand(['--run', 'r'], capture().io, { settings: memory })).toBe(CommandExit.USAGE);
    expect(await runCommand(['germinate', '--blend', 'sideways'], capture().io, { settings: memory })).toBe(CommandExit.USAGE);
    for (const timeout of ['0', '-1', '', '0x3', 'soon']) {
      const c = capture();
      expect(await runCommand(['cull', '--run', 'r', '--seed', 's', '--timeout', timeout], c.io, { settings: memory }), timeout).toBe(
        CommandExit.USAGE,
      );
      expect(c.err()).toContain('--timeout');
    }
    const d = capture();
    expect(await runCommand(['germinate', '--run', 'r', '--seed', 's'], d.io, { settings: redisSettings('x:') })).toBe(CommandExit.USAGE);
    expect(d.err()).toMatch(/germinate needs a (blueprint|site) id/);
  });

  it('shows a real site of the default host in its help', async () => {
    const { io, out } = capture();
    expect(await runCommand(['--help'], io)).toBe(0);
    expect(out()).toBe(COMMAND_HELP);
    const example = /--site <id> +.*e\.g\. (\S+)/.exec(COMMAND_HELP)?.[1];
    expect(example).toBe('hidden1');
    expect(COMMAND_HELP).not.toContain('mlp/h1');
    // The example is a site of the default host (esper train's MLP on MNIST).
    await initTensorBackend();
    const host = createHost('mlp', { inputShape: [784], numClasses: 10, seed: 0 });
    try {
      expect(host.descriptor.sites.map((site) => site.siteId)).toContain(example);
    } finally {
      host.dispose();
    }
  });
});
