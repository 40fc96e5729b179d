/**
 * The Tamiyo server over an in-process bus: a run's announcement opens a Tamiyo for it
 * (provisioning the host's blueprints into the server's own Urza first), the run's state
 * packets are answered, its end closes that Tamiyo, and an announcement it cannot serve is
 * refused with an ERROR and not retried. The trainer side is a real remote growing run.
 */
import { create } from '@bufbuild/protobuf';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { RunAnnouncementSchema, RunPhase, SystemStatePacketSchema, TelemetryLevel } from '../../src/leyline/index.js';
import { openBusFromSettings, type Bus } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { createHost, type HostModel } from '../../src/tolaria/index.js';
import { openGrowingRun, openTamiyoServer, TamiyoServerEvent, type TamiyoServer } from '../../src/weatherlight/index.js';

const keyRing = new KeyRing([{ keyId: 'k1', secret: Buffer.from('tamiyo-server-test-secret-0123456789', 'utf8') }]);

/** Polls `condition` until it holds or `ms` pass (the server works on the bus's schedule). */
async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('Tamiyo server', () => {
  let root: string;
  let settings: EsperSettings;
  let host: HostModel;
  let bus: Bus;
  let server: TamiyoServer;
  const serverTelemetry = new MemoryTelemetrySink();

  beforeAll(async () => {
    await initTensorBackend();
    root = await mkdtemp(path.join(tmpdir(), 'esper-tamiyo-server-'));
    settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') } } });
    host = createHost('mlp', { inputShape: [2], numClasses: 2, seed: 0, hidden: [4] });
    bus = openBusFromSettings(settings, { keyRing, telemetry: new MemoryTelemetrySink() });
    // The server's own Urza is in another var dir: it must provision the announced host itself.
    const serverSettings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'server-var') } } });
    server = await openTamiyoServer(serverSettings, {
      bus,
      keyRing,
      telemetry: serverTelemetry,
      policy: 'heuristic',
      fieldReportDir: path.join(root, 'field-reports'),
    });
    await server.start();
  });

  afterAll(async () => {
    await server.close();
    await bus.close();
    host.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('takes a remote run up at its announcement, answers it, and closes it at its end', async () => {
    const run = await openGrowingRun(settings, {
      controller: 'remote',
      bus,
      host,
      trainingRunId: 'run-remote',
      telemetry: new MemoryTelemetrySink(),
      keyRing,
      seed: 0,
    });
    expect(run.tamiyo).toBeUndefined();
    try {
      await until(() => server.run('run-remote') !== undefined);
      expect(server.stats()).toMatchObject({ runsOpened: 1, serving: ['run-remote'] });
      // The server compiled and certified the host's blueprints into its own Urza.
      const opened = serverTelemetry.events(TamiyoServerEvent.RUN_OPENED)[0];
      expect(Number(opened?.attributes['candidates'])).toBeGreaterThan(0);
      // The run's epoch packet is answered by its Tamiyo (a decision is recorded).
      await bus.publish(
        create(SystemStatePacketSchema, {
          trainingRunId: 'run-remote',
          packetId: 'epoch-0',
          epochEnd: true,
          currentEpoch: 0,
          globalStep: 10n,
          validationAccuracy: 0.5,
          validationLoss: 0.7,
          trainingLoss: 0.7,
        }),
      );
      await until(() => (server.run('run-remote')?.service.decisions.length ?? 0) > 0);
      // A second announcement of a served run changes nothing.
      const handled = bus.metrics().handledTotal;
      await run.control.announce(5n);
      await until(() => bus.metrics().handledTotal > handled);
      expect(server.stats().runsOpened).toBe(1);
    } finally {
      await run.close('run_completed');
    }
    await until(() => server.stats().runsClosed === 1);
    expect(server.run('run-remote')).toBeUndefined();
    const closed = serverTelemetry.events(TamiyoServerEvent.RUN_CLOSED)[0];
    expect(closed?.attributes['reason']).toBe('run_completed');

    // A late RUNNING of the ended run does not reopen it.
    const handled = bus.metrics().handledTotal;
    await bus.publish(create(RunAnnouncementSchema, { trainingRunId: 'run-remote', phase: RunPhase.RUNNING, host: host.descriptor }));
    await until(() => bus.metrics().handledTotal > handled);
    expect(server.stats()).toMatchObject({ runsOpened: 1, serving: [] });

    // A run that ended failed is taken up again when it announces itself (its trainer was
    // restarted and resumed from a checkpoint).
    const announce = (phase: RunPhase, reason = '') =>
      bus.publish(create(RunAnnouncementSchema, { trainingRunId: 'run-resumed', phase, reason, host: host.descriptor }));
    await announce(RunPhase.RUNNING);
    await until(() => server.run('run-resumed') !== undefined);
    await announce(RunPhase.ENDED, 'run_failed');
    await until(() => server.run('run-resumed') === undefined);
    await announce(RunPhase.RUNNING);
    await until(() => server.run('run-resumed') !== undefined);
    expect(server.stats().runsOpened).toBe(3);
  }, 60_000);

  it('refuses a run announced without a host with seed sites: an ERROR, acknowledged, not retried', async () => {
    const before = server.stats().runsRefused;
    await bus.publish(create(RunAnnouncementSchema, { trainingRunId: 'run-hostless', phase: RunPhase.RUNNING }));
    await until(() => server.stats().runsRefused === before + 1);
    const refused = serverTelemetry.events(TamiyoServerEvent.RUN_REFUSED)[0];
    expect(refused?.level).toBe(TelemetryLevel.ERROR);
    expect(refused?.attributes['error']).toMatch(/run-hostless announced no host with seed sites/);
    expect(server.run('run-hostless')).toBeUndefined();
    expect(bus.metrics().deadLetterTotal).toBe(0);
  }, 30_000);
});
