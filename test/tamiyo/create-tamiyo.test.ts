import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { KeyRing } from '../../src/security/index.js';
import { createTamiyo, DecisionKind, GnnPolicy, HeuristicPolicy, type TamiyoPolicy } from '../../src/tamiyo/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { createHost } from '../../src/tolaria/index.js';

const keyRing = new KeyRing([{ keyId: 'k1', secret: Buffer.from('create-tamiyo-secret-0123456789', 'utf8') }]);
const catalog = new KarnCatalog();

describe('createTamiyo', () => {
  let root: string;
  let settings: EsperSettings;
  let host: ReturnType<typeof createHost>;

  beforeAll(async () => {
    await initTensorBackend();
    root = await mkdtemp(path.join(tmpdir(), 'esper-create-tamiyo-'));
    settings = loadSettings({ env: {}, overrides: { storage: { varDir: root }, tamiyo: { stepTimeoutMs: 7 } } });
    host = createHost('mlp', { inputShape: [2], numClasses: 2, seed: 0, hidden: [4] });
  });

  afterAll(async () => {
    host.dispose();
    await rm(root, { recursive: true, force: true });
  });

  const candidates = catalog
    .list()
    .slice(0, 2)
    .map((descriptor) => ({ descriptor, quarantined: false }));

  it('builds the heuristic policy by name with its options, keeps field reports in the given log, and closes both', async () => {
    const model = host;
    const walPath = path.join(root, 'reports', 'field-reports.wal');
    const tamiyo = await createTamiyo(settings, {
      policy: 'heuristic',
      heuristic: { version: 'heuristic-test', minEpochs: 2 },
      host: model.descriptor,
      candidates,
      keyRing,
      trainingRunId: 'run-1',
      telemetry: new MemoryTelemetrySink(),
      fieldReports: { walPath },
    });
    try {
      expect(tamiyo.service.policy).toBeInstanceOf(HeuristicPolicy);
      expect(tamiyo.service.policy.version).toBe('heuristic-test');
      expect(tamiyo.service.candidates.map((c) => c.descriptor.blueprintId)).toEqual(candidates.map((c) => c.descriptor.blueprintId));
      expect(tamiyo.fieldReports).toBeDefined();
      expect((await stat(walPath)).isFile()).toBe(true);
    } finally {
      await tamiyo.close('test_done');
    }
    expect(tamiyo.service.state).toBe('closed');
    await tamiyo.close(); // idempotent
  });

  it('builds an untrained GNN policy by name, with no field reports unless asked', async () => {
    const model = host;
    const tamiyo = await createTamiyo(settings, {
      policy: 'gnn',
      seed: 3,
      host: model.descriptor,
      candidates,
      keyRing,
      trainingRunId: 'run-2',
      telemetry: new MemoryTelemetrySink(),
    });
    try {
      expect(tamiyo.service.policy).toBeInstanceOf(GnnPolicy);
      expect(tamiyo.fieldReports).toBeUndefined();
    } finally {
      await tamiyo.close();
    }
  });

  it('owns a policy object: frees it on close, and also when construction fails', async () => {
    let disposed = 0;
    const policy: TamiyoPolicy = {
      name: 'fixed',
      version: 'fixed-1',
      propose: () => ({ decision: { kind: DecisionKind.WAIT }, confidence: 1, risk: 0 }) as never,
      dispose: () => {
        disposed += 1;
      },
    };
    const model = host;
    const tamiyo = await createTamiyo(settings, {
      policy,
      host: model.descriptor,
      candidates,
      keyRing,
      trainingRunId: 'run-3',
      telemetry: new MemoryTelemetrySink(),
    });
    expect(tamiyo.service.policy).toBe(policy);
    await tamiyo.close();
    expect(disposed).toBe(1);

    const walPath = path.join(root, 'reports-dup', 'field-reports.wal');
    const failure = await createTamiyo(settings, {
      policy,
      host: model.descriptor,
      candidates: [candidates[0]!, candidates[0]!],
      keyRing,
      trainingRunId: 'run-4',
      telemetry: new MemoryTelemetrySink(),
      fieldReports: { walPath },
    }).catch((error: unknown) => error);
    expect(isEsperError(failure, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect(disposed).toBe(2);
  });
});
