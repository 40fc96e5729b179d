/** `createKasmina`: Kasmina built from its settings section and its collaborators, closed by one `close()`. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AsyncWorker, ErrorCode, isEsperError, loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { createKasmina, KasminaMetric, type KasminaDeps, type KasminaSettings } from '../../src/kasmina/index.js';
import { AdaptationCommandSchema, SeedLifecycleStage, type AdaptationCommand } from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { CommandVerifier, HmacSigner, NonceLedger } from '../../src/security/index.js';
import { seededRng } from '../../src/tensor/index.js';
import { mlpHost } from '../../src/tolaria/index.js';
import { UrzaLibrary } from '../../src/urza/index.js';
import { catalog, provision, RING } from './fixtures/harness.js';
import { rejectionOf } from '../oona/fixtures/waits.js';
import { germinateCommand, RUN } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

const sign = (signer: HmacSigner, command: AdaptationCommand): AdaptationCommand => signer.sign(AdaptationCommandSchema, command);

async function deps(): Promise<{ deps: KasminaDeps; loads: string[]; telemetry: MemoryTelemetrySink; signer: HmacSigner }> {
  const root = await mkdtemp(path.join(tmpdir(), 'create-kasmina-'));
  cleanups.push(() => rm(root, { recursive: true, force: true }));
  const library = await UrzaLibrary.open({ rootDir: path.join(root, 'urza') });
  cleanups.push(() => library.close());
  const host = mlpHost({ inputShape: [8], hidden: [16, 16], numClasses: 3, seed: 1, hostId: `factory-${cleanups.length}` });
  cleanups.push(() => host.dispose());
  await provision(library, host, ['BP001']);
  const telemetry = new MemoryTelemetrySink();
  const signer = new HmacSigner(RING);
  const verifier = new CommandVerifier({
    signer,
    ledger: new NonceLedger({ sink: telemetry, source: 'kasmina' }),
    sink: telemetry,
    source: 'kasmina',
  });
  const loads: string[] = [];
  const kernels = {
    load: (blueprintId: string, siteKey: string) => {
      loads.push(blueprintId);
      return library.load(blueprintId, siteKey);
    },
  };
  return { deps: { host, trainingRunId: RUN, telemetry, catalog, kernels, verifier }, loads, telemetry, signer };
}

describe('createKasmina', () => {
  it('builds an executor on the host whose kernels come from the given source through one cache', async () => {
    const { deps: d, loads, signer } = await deps();
    const kasmina = await createKasmina({ ...loadSettings({ env: {} }).kasmina, kernelCacheCapacity: 4 }, d);
    cleanups.push(() => kasmina.close());
    const context = { host: d.host, trainingRunId: RUN, epoch: 0, globalStep: 0, rng: seededRng(1) };
    await kasmina.executor.apply(sign(signer, germinateCommand('s1', 'hidden1')), context);
    await kasmina.executor.apply(sign(signer, germinateCommand('s2', 'hidden2')), context);
    expect(kasmina.executor.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(d.host.hooks.size).toBe(2);
    // Both sites share one shape: the second fetch is served from the cache.
    expect(loads).toEqual(['BP001']);
    expect(kasmina.fetcher.stats()).toMatchObject({ fetched: 2, cacheHits: 1 });
  });

  it('starts a prefetch coordinator in its own group when given a bus, and closes in reverse order, once', async () => {
    const { deps: d, telemetry, signer } = await deps();
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'create-kasmina', maxConcurrency: 4 });
    cleanups.push(() => worker.close());
    const kasmina = await createKasmina(loadSettings({ env: {} }).kasmina, { ...d, prefetch: { bus, worker } });
    const context = { host: d.host, trainingRunId: RUN, epoch: 0, globalStep: 0, rng: seededRng(1) };
    await kasmina.executor.apply(sign(signer, germinateCommand('s1')), context);
    expect(kasmina.executor.stageOf('s1')).toBe(SeedLifecycleStage.SEED_STAGE_GERMINATED);
    await kasmina.executor.advance(context);
    const inflight = telemetry.packets.at(-1)?.metrics.find((m) => m.name === KasminaMetric.PREFETCH_INFLIGHT);
    expect(inflight?.value).toBe(1);
    const first = kasmina.close();
    expect(kasmina.close()).toBe(first);
    await kasmina[Symbol.asyncDispose]();
    // The executor closed first (its shutdown cancelled the request), the coordinator after it.
    expect(telemetry.events('prefetch_canceled').map((e) => e.attributes['reason'])).toEqual(['shutdown']);
    expect(kasmina.executor.seedReports()[0]?.fateReason).toBe('shutdown');
  });

  it('refuses settings a part cannot use, with a typed error naming the field, and leaves nothing started', async () => {
    const { deps: d } = await deps();
    const fieldOf = async (settings: Partial<KasminaSettings>): Promise<unknown> => {
      const error = await rejectionOf(createKasmina({ ...loadSettings({ env: {} }).kasmina, ...settings }, d));
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      return (error as { details: Record<string, unknown> }).details['field'];
    };
    expect(await fieldOf({ kernelCacheCapacity: 0 })).toBe('capacity');
    // Lifecycle settings not read through loadSettings are checked too: a cadence of 0 would switch isolation checks off.
    expect(await fieldOf({ isolationCheckEverySteps: 0 })).toBe('isolationCheckEverySteps');
    expect(await fieldOf({ trainingSteps: 1.5 })).toBe('trainingSteps');
    expect(await fieldOf({ minContribution: Number.NaN })).toBe('minContribution');
    expect(d.host.hooks.size).toBe(0);
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const worker = new AsyncWorker({ name: 'create-kasmina-bad', maxConcurrency: 4 });
    cleanups.push(() => worker.close());
    const noRun = await rejectionOf(
      createKasmina(loadSettings({ env: {} }).kasmina, { ...d, trainingRunId: ' ', prefetch: { bus, worker } }),
    );
    expect(isEsperError(noRun, ErrorCode.INVALID_ARGUMENT)).toBe(true);
  });
});
