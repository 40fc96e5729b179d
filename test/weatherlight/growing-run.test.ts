/**
 * Weatherlight composes one growing run from settings: Urza, the forge for the host's sites,
 * Urabrask's sheets, the run's command verifier, Kasmina and Tamiyo over the candidates.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { KeyRing } from '../../src/security/index.js';
import { HeuristicPolicy } from '../../src/tamiyo/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { createHost, type HostModel } from '../../src/tolaria/index.js';
import { openGrowingRun, openGrowth } from '../../src/weatherlight/index.js';

const keyRing = new KeyRing([{ keyId: 'k1', secret: Buffer.from('weatherlight-test-secret-0123456789', 'utf8') }]);

describe('openGrowingRun', () => {
  let root: string;
  let settings: EsperSettings;
  let host: HostModel;

  beforeAll(async () => {
    await initTensorBackend();
    root = await mkdtemp(path.join(tmpdir(), 'esper-weatherlight-'));
    settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') } } });
    host = createHost('mlp', { inputShape: [2], numClasses: 2, seed: 0, hidden: [4] });
  });

  afterAll(async () => {
    host.dispose();
    await rm(root, { recursive: true, force: true });
  });

  it('composes Tamiyo, Kasmina and the command verifier over a forged, certified library; a second run only verifies', async () => {
    const lines: string[] = [];
    const first = await openGrowingRun(settings, {
      host,
      trainingRunId: 'run-a',
      telemetry: new MemoryTelemetrySink(),
      keyRing,
      policy: 'heuristic',
      heuristic: { version: 'heuristic-weatherlight' },
      fieldReports: { walPath: path.join(root, 'run-a', 'field-reports.wal') },
      onProgress: (line) => lines.push(line),
    });
    let sheets: number;
    try {
      const { controller, executor, commandVerifier } = first.collaborators;
      // Tamiyo is reached over the run's bus: the trainer's controller is the control link.
      expect(controller).toBe(first.control);
      expect(first.inbox.state).toBe('running');
      expect(executor).toBe(first.growth.kasmina.executor);
      expect(commandVerifier).toBe(first.growth.commandVerifier.verifier);
      expect(first.tamiyo.service.policy).toBeInstanceOf(HeuristicPolicy);
      expect(first.tamiyo.service.policy.version).toBe('heuristic-weatherlight');
      expect(first.growth.forged.completed).toBeGreaterThan(0);
      expect(first.growth.forged.failed).toBe(0);
      sheets = first.growth.certified?.certified ?? 0;
      expect(sheets).toBeGreaterThan(0);
      // Every candidate fits a host site and carries its verified sheet.
      const candidates = first.tamiyo.service.candidates;
      expect(candidates.length).toBeGreaterThan(0);
      expect(candidates.every((c) => c.bsds !== undefined && c.graph !== undefined)).toBe(true);
      expect(first.tamiyo.service.rejectedCandidates).toEqual([]);
      expect(first.seedReports()).toEqual([]);
      expect(lines[0]).toMatch(/^blueprints: \d+ compiled, 0 already in Urza, 0 failed for 2 sites/);
      expect(lines[1]).toMatch(/^safety data sheets: \d+ issued by Urabrask/);
      expect((await stat(first.growth.commandVerifier.nonceFile)).isFile()).toBe(true);
      expect(first.growth.commandVerifier.nonceFile).toBe(path.join(root, 'var', 'security', 'nonces-kasmina-run-a.wal'));
    } finally {
      await first.close('test_done');
    }
    expect(first.tamiyo.service.state).toBe('closed');
    expect(first.growth.kasmina.executor.state).toBe('closed');
    await first.close(); // idempotent

    // Same var dir: the forge's WAL and Urza say everything is there, the sheets verify.
    const second = await openGrowth(settings, {
      host,
      trainingRunId: 'run-b',
      telemetry: new MemoryTelemetrySink(),
      keyRing,
      certify: true,
    });
    try {
      expect(second.forged.completed).toBe(0);
      expect(second.forged.skipped).toBe(first.growth.forged.completed);
      expect(second.certified).toMatchObject({ certified: 0, alreadyCertified: sheets });
    } finally {
      await second.close();
    }
  });

  it("fails with Urza's typed error when its catalog path is a directory", async () => {
    const blocked = loadSettings({
      env: {},
      overrides: { storage: { varDir: path.join(root, 'var-blocked'), urzaDatabasePath: root } },
    });
    await expect(
      openGrowingRun(blocked, { host, trainingRunId: 'run-c', telemetry: new MemoryTelemetrySink(), keyRing, policy: 'heuristic' }),
    ).rejects.toMatchObject({ code: 'ESPER_URZA_STORAGE_INVALID' });
  });
});
