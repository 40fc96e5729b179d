import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink, type Clock, type EsperError } from '../../src/core/index.js';
import {
  BlueprintDescriptorSchema,
  BlueprintTier,
  CircuitBreakerState,
  MessagePriority,
  TelemetryLevel,
  type BlueprintDescriptor,
} from '../../src/leyline/index.js';
import { sha256Hex } from '../../src/urza/artifact-files.js';
import { UrzaLibrary } from '../../src/urza/library.js';
import type { UrzaSaveInput } from '../../src/urza/library-records.js';
import { URZA_SAVE_STEPS, UrzaSaveStep, type UrzaLibraryOptions } from '../../src/urza/library-options.js';
import { UrzaIntegrityReason } from '../../src/urza/names.js';
import { UrzaStorageReason } from '../../src/urza/storage-error.js';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urza-library-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function descriptor(id: string, tier: BlueprintTier = BlueprintTier.SAFE, family = 'residual_mlp'): BlueprintDescriptor {
  return create(BlueprintDescriptorSchema, { blueprintId: id, name: `bp ${id}`, tier, family, risk: 0.5 });
}

function artifact(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function saveInput(id: string, bytes: Uint8Array, siteKey = 'dense:32'): UrzaSaveInput {
  return {
    descriptor: descriptor(id),
    siteKey,
    artifact: bytes,
    guardDigest: sha256Hex(artifact(`guard:${id}`)),
    compileMs: 12.5,
    prewarm: { p50Ms: 1.5, p95Ms: 2.5 },
  };
}

async function openLibrary(options: Partial<UrzaLibraryOptions> = {}): Promise<UrzaLibrary> {
  return UrzaLibrary.open({ rootDir: root, ...options });
}

async function expectEsperError(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(isEsperError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
}

async function artifactFiles(): Promise<string[]> {
  return (await readdir(path.join(root, 'artifacts'))).sort();
}

/** A clock on which every reading is `stepMs` after the previous: each timed span lasts `stepMs`. */
class SteppingClock implements Clock {
  stepMs: number;
  #nowMs = 0;
  constructor(stepMs: number) {
    this.stepMs = stepMs;
  }
  monotonicMs(): number {
    this.#nowMs += this.stepMs;
    return this.#nowMs;
  }
  wallMs(): number {
    return Date.UTC(2026, 0, 1) + this.#nowMs;
  }
}

describe('UrzaLibrary', () => {
  it('round-trips an artifact with its record and descriptor in WAL mode', async () => {
    await using library = await openLibrary();
    const bytes = artifact('kernel BP001 v1');
    const saved = await library.save(saveInput('BP001', bytes));

    expect(saved.checksum).toBe(sha256Hex(bytes));
    expect(saved.fileName).toBe(`${sha256Hex(bytes)}.esa`);
    expect(await artifactFiles()).toEqual([saved.fileName]);

    const loaded = await library.load('BP001', 'dense:32');
    expect(loaded.bytes).toEqual(bytes);
    expect(loaded.record).toEqual(saved);
    expect(loaded.record).toMatchObject({ sizeBytes: bytes.length, compileMs: 12.5, prewarmP50Ms: 1.5, prewarmP95Ms: 2.5 });
    expect(loaded.fetchMs).toBeGreaterThanOrEqual(0);
    expect(library.get('BP001')).toEqual(descriptor('BP001'));
    expect(library.get('BP999')).toBeUndefined();
    expect(library.artifacts('BP001').map((r) => r.siteKey)).toEqual(['dense:32']);

    const journal = await readdir(root);
    expect(journal).toContain('catalog.db-wal');
  });

  it('persists across reopen and loads by checksum', async () => {
    const bytes = artifact('kernel BP002');
    {
      await using library = await openLibrary();
      await library.save(saveInput('BP002', bytes));
      await library.save(saveInput('BP002', artifact('kernel BP002 conv'), 'conv:8x8x4'));
    }
    await using reopened = await openLibrary();
    expect((await reopened.load('BP002', 'dense:32')).bytes).toEqual(bytes);
    expect(reopened.list()[0]?.siteKeys).toEqual(['conv:8x8x4', 'dense:32']);
    expect(reopened.stats().orphansRemoved).toBe(0);
  });

  it('replaces an artifact on re-save and removes the superseded file', async () => {
    await using library = await openLibrary();
    await library.save(saveInput('BP003', artifact('v1')));
    const v2 = await library.save(saveInput('BP003', artifact('v2')));
    expect((await library.load('BP003', 'dense:32')).bytes).toEqual(artifact('v2'));
    expect(await artifactFiles()).toEqual([v2.fileName]);
  });

  it('keeps a file shared by two rows until neither references it', async () => {
    await using library = await openLibrary();
    const shared = artifact('same bytes');
    const a = await library.save(saveInput('BP004', shared));
    await library.save(saveInput('BP005', shared));
    await library.save(saveInput('BP004', artifact('other')));
    expect(await artifactFiles()).toContain(a.fileName);
    expect((await library.load('BP005', 'dense:32')).bytes).toEqual(shared);
  });

  it('refuses a corrupted artifact byte: integrity failure, CRITICAL event, counter, never served', async () => {
    const telemetry = new MemoryTelemetrySink();
    await using library = await openLibrary({ telemetry });
    const saved = await library.save(saveInput('BP006', artifact('precious kernel bytes')));
    const file = path.join(root, 'artifacts', saved.fileName);
    const corrupted = await readFile(file);
    corrupted[3] = (corrupted[3] ?? 0) ^ 0xff;
    await writeFile(file, corrupted);

    await expectEsperError(library.load('BP006', 'dense:32'), ErrorCode.URZA_INTEGRITY_FAILURE);
    await expectEsperError(library.load('BP006', 'dense:32'), ErrorCode.URZA_INTEGRITY_FAILURE);

    expect(library.stats().integrityFailures).toBe(2);
    expect(library.stats().cacheSize).toBe(0);
    const events = telemetry.events('integrity_failure');
    expect(events).toHaveLength(2);
    expect(events[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(events[0]?.attributes).toMatchObject({
      blueprint_id: 'BP006',
      reason: 'checksum_mismatch',
      expected_checksum: saved.checksum,
      actual_checksum: sha256Hex(corrupted),
    });
    expect(telemetry.packets[0]?.priority).toBe(MessagePriority.CRITICAL);
  });

  it('refuses a missing artifact file as an integrity failure', async () => {
    const telemetry = new MemoryTelemetrySink();
    await using library = await openLibrary({ telemetry });
    const saved = await library.save(saveInput('BP007', artifact('gone soon')));
    await rm(path.join(root, 'artifacts', saved.fileName));

    await expectEsperError(library.load('BP007', 'dense:32'), ErrorCode.URZA_INTEGRITY_FAILURE);
    expect(library.stats().integrityFailures).toBe(1);
    expect(telemetry.events('integrity_failure')[0]?.attributes['reason']).toBe('missing_artifact');
  });

  it('detects corruption of a cached artifact once its entry expires', async () => {
    const clock = new FakeClock();
    const telemetry = new MemoryTelemetrySink();
    await using library = await openLibrary({ clock, telemetry, cacheTtlMs: 1_000 });
    const saved = await library.save(saveInput('BP008', artifact('cached kernel')));
    await library.load('BP008', 'dense:32');
    await writeFile(path.join(root, 'artifacts', saved.fileName), artifact('tampered kernel'));

    // Within the TTL the verified bytes are served from the cache.
    expect((await library.load('BP008', 'dense:32')).bytes).toEqual(artifact('cached kernel'));
    clock.advance(1_000);
    await expectEsperError(library.load('BP008', 'dense:32'), ErrorCode.URZA_INTEGRITY_FAILURE);
    expect(library.stats()).toMatchObject({ cacheExpired: 1, integrityFailures: 1 });
    expect(telemetry.events('integrity_failure')).toHaveLength(1);
  });

  it('reports an unknown artifact as not found', async () => {
    await using library = await openLibrary();
    await expectEsperError(library.load('BP404', 'dense:32'), ErrorCode.URZA_NOT_FOUND);
  });

  it('does not let a caller mutating loaded bytes poison the cache', async () => {
    await using library = await openLibrary();
    await library.save(saveInput('BP009', artifact('abc')));
    const first = await library.load('BP009', 'dense:32');
    first.bytes[0] = 0;
    expect((await library.load('BP009', 'dense:32')).bytes).toEqual(artifact('abc'));
  });

  describe('crash at every save step leaves the old or the new state', () => {
    const committedSteps = new Set<string>([UrzaSaveStep.COMMITTED]);
    for (const step of URZA_SAVE_STEPS) {
      it(`crash at ${step}`, async () => {
        const oldBytes = artifact('old kernel');
        const newBytes = artifact('new kernel');
        {
          await using library = await openLibrary();
          await library.save(saveInput('BP010', oldBytes));
        }
        {
          const crash = new Error(`simulated crash at ${step}`);
          await using crashing = await openLibrary({
            faults: {
              atSaveStep: (at) => {
                if (at === step) throw crash;
              },
            },
          });
          await expect(crashing.save(saveInput('BP010', newBytes))).rejects.toBe(crash);
        }
        await using reopened = await openLibrary();
        const expected = committedSteps.has(step) ? newBytes : oldBytes;
        const loaded = await reopened.load('BP010', 'dense:32');
        expect(loaded.bytes).toEqual(expected);
        // Only the file the row names survives the open-time cleanup.
        expect(await artifactFiles()).toEqual([`${sha256Hex(expected)}.esa`]);
        expect(reopened.stats().orphansRemoved).toBe(1);
        expect(URZA_SAVE_STEPS).toContain(step);
      });
    }

    it('a first save that crashes before commit leaves no blueprint', async () => {
      {
        await using crashing = await openLibrary({
          faults: {
            atSaveStep: (at) => {
              if (at === UrzaSaveStep.BEFORE_COMMIT) throw new Error('crash');
            },
          },
        });
        await expect(crashing.save(saveInput('BP011', artifact('x')))).rejects.toThrow('crash');
        expect(crashing.get('BP011')).toBeUndefined();
      }
      await using reopened = await openLibrary();
      expect(reopened.list()).toEqual([]);
      expect(await artifactFiles()).toEqual([]);
    });
  });

  it('evicts the least recently used entry beyond cacheMaxEntries', async () => {
    await using library = await openLibrary({ cacheMaxEntries: 2 });
    for (const id of ['BP020', 'BP021', 'BP022']) await library.save(saveInput(id, artifact(id)));
    await library.load('BP020', 'dense:32');
    await library.load('BP021', 'dense:32');
    await library.load('BP020', 'dense:32'); // hit; BP021 becomes LRU
    await library.load('BP022', 'dense:32'); // evicts BP021
    await library.load('BP020', 'dense:32'); // hit
    await library.load('BP021', 'dense:32'); // miss again
    expect(library.stats()).toMatchObject({ cacheHits: 2, cacheMisses: 4, evictions: 2, cacheSize: 2 });
  });

  it('serves a cache hit within the TTL and re-reads after it', async () => {
    const clock = new FakeClock();
    await using library = await openLibrary({ clock, cacheTtlMs: 500 });
    await library.save(saveInput('BP023', artifact('ttl')));
    await library.load('BP023', 'dense:32');
    clock.advance(499);
    await library.load('BP023', 'dense:32');
    clock.advance(1);
    await library.load('BP023', 'dense:32');
    expect(library.stats()).toMatchObject({ cacheHits: 1, cacheMisses: 2, cacheExpired: 1 });
  });

  it('opens the breaker after slow DB reads and refuses reads until it half-opens', async () => {
    const clock = new SteppingClock(1);
    await using library = await openLibrary({
      clock,
      slowQueryMs: 50,
      breakerFailureThreshold: 2,
      breakerSuccessThreshold: 1,
      breakerOpenTimeoutMs: 10_000,
      cacheMaxEntries: 0,
    });
    await library.save(saveInput('BP030', artifact('slow')));
    expect(library.get('BP030')?.blueprintId).toBe('BP030');

    clock.stepMs = 100; // every timed read now takes 100 ms > slowQueryMs
    library.get('BP030');
    library.get('BP030');
    expect(library.stats()).toMatchObject({ slowQueries: 2, breakerState: CircuitBreakerState.CIRCUIT_STATE_OPEN, breakerOpenTotal: 1 });
    expect(() => library.get('BP030')).toThrow(expect.objectContaining({ code: ErrorCode.BREAKER_OPEN }));
    await expectEsperError(library.load('BP030', 'dense:32'), ErrorCode.BREAKER_OPEN);
    expect(library.stats().breakerDenied).toBe(2);

    clock.stepMs = 10_000; // the open window elapses; the probe read is fast again
    expect(library.stats().breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_OPEN);
    clock.monotonicMs();
    clock.stepMs = 1;
    expect(library.get('BP030')?.blueprintId).toBe('BP030');
    expect(library.stats().breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_CLOSED);
  });

  it('lists blueprints by tier and family, and deletes them with their files', async () => {
    await using library = await openLibrary();
    const inputs: [string, BlueprintTier, string][] = [
      ['BP040', BlueprintTier.SAFE, 'residual_mlp'],
      ['BP041', BlueprintTier.SAFE, 'conv3x3'],
      ['BP042', BlueprintTier.EXPERIMENTAL, 'conv3x3'],
      ['BP043', BlueprintTier.HIGH_RISK, 'unstable'],
    ];
    for (const [id, tier, family] of inputs) {
      await library.save({ ...saveInput(id, artifact(id)), descriptor: descriptor(id, tier, family) });
    }
    const ids = (filter: Parameters<UrzaLibrary['list']>[0]): string[] => library.list(filter).map((entry) => entry.descriptor.blueprintId);
    expect(ids({})).toEqual(['BP040', 'BP041', 'BP042', 'BP043']);
    expect(ids({ tier: BlueprintTier.SAFE })).toEqual(['BP040', 'BP041']);
    expect(ids({ family: 'conv3x3' })).toEqual(['BP041', 'BP042']);
    expect(ids({ tier: BlueprintTier.EXPERIMENTAL, family: 'conv3x3' })).toEqual(['BP042']);

    expect(await library.delete('BP041')).toBe(true);
    expect(await library.delete('BP041')).toBe(false);
    expect(await library.delete('BP042', 'dense:32')).toBe(true);
    expect(library.get('BP042')?.blueprintId).toBe('BP042');
    expect(ids({ family: 'conv3x3' })).toEqual(['BP042']);
    expect(library.list({ family: 'conv3x3' })[0]?.siteKeys).toEqual([]);
    expect(await artifactFiles()).toEqual([sha256Hex(artifact('BP040')), sha256Hex(artifact('BP043'))].map((h) => `${h}.esa`).sort());
    await expectEsperError(library.load('BP041', 'dense:32'), ErrorCode.URZA_NOT_FOUND);
  });

  it('closes idempotently and refuses calls after close', async () => {
    const library = await openLibrary();
    const first = library.close();
    expect(library.close()).toBe(first);
    await first;
    await library[Symbol.asyncDispose]();
    expect(library.state).toBe('closed');
    await expect(library.save(saveInput('BP050', artifact('late')))).rejects.toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_STATE }),
    );
  });

  describe('storage it cannot trust is refused with a typed error naming the file', () => {
    async function openError(options: Partial<UrzaLibraryOptions> = {}): Promise<EsperError> {
      try {
        await (await openLibrary(options)).close();
      } catch (error) {
        if (isEsperError(error)) return error;
        throw error;
      }
      throw new Error('the library opened');
    }

    it('a truncated catalog.db', async () => {
      {
        await using library = await openLibrary();
        for (let i = 0; i < 40; i += 1) await library.save(saveInput(`BP${100 + i}`, artifact(`kernel ${i} ${'x'.repeat(300)}`)));
      }
      const dbPath = path.join(root, 'catalog.db');
      await truncate(dbPath, Math.floor((await stat(dbPath)).size / 2));
      const error = await openError();
      expect(error.code).toBe(ErrorCode.URZA_STORAGE_INVALID);
      expect(error.details).toMatchObject({ path: dbPath, reason: UrzaStorageReason.CORRUPT });
      expect(error.message).toContain(dbPath);
    });

    it('a missing artifact directory while the catalog lists artifacts, and a file in its place', async () => {
      {
        await using library = await openLibrary();
        await library.save(saveInput('BP060', artifact('kernel')));
      }
      const dir = path.join(root, 'artifacts');
      await rm(dir, { recursive: true });
      expect((await openError()).details).toMatchObject({ path: dir, reason: UrzaStorageReason.ARTIFACT_DIR_MISSING });
      await writeFile(dir, 'a file');
      expect((await openError()).details).toMatchObject({ path: dir, reason: UrzaStorageReason.UNREADABLE });
    });

    it('a stored descriptor that does not decode names its blueprint (integrity failure, CRITICAL)', async () => {
      const telemetry = new MemoryTelemetrySink();
      {
        await using library = await openLibrary();
        await library.save(saveInput('BP061', artifact('kernel')));
      }
      const db = new Database(path.join(root, 'catalog.db'));
      db.prepare("UPDATE blueprints SET descriptor = x'0a05425030' WHERE blueprint_id = 'BP061'").run();
      db.close();
      await using library = await openLibrary({ telemetry });
      for (const read of [() => library.get('BP061'), () => library.list()]) {
        expect(read).toThrow(
          expect.objectContaining({
            code: ErrorCode.URZA_INTEGRITY_FAILURE,
            details: expect.objectContaining({ blueprintId: 'BP061', reason: UrzaIntegrityReason.DESCRIPTOR_UNDECODABLE }),
          }),
        );
      }
      expect(telemetry.events('integrity_failure')).toHaveLength(2);
    });
  });

  it('rejects invalid options naming the field', async () => {
    await expect(openLibrary({ cacheTtlMs: -1 })).rejects.toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, details: expect.objectContaining({ field: 'cacheTtlMs' }) }),
    );
  });
});
