import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, isMessage } from '@bufbuild/protobuf';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  BSDSFailedSchema,
  BSDSIssuedSchema,
  BusMessageType,
  HazardBand,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  type BSDSFailed,
  type BSDSIssued,
} from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { createBsdsVerifier, UrzaLibrary } from '../../src/urza/index.js';
import { Crucible } from '../../src/urabrask/crucible.js';
import { UrabraskService } from '../../src/urabrask/service.js';

const RING = new KeyRing([{ keyId: 'k1', secret: new TextEncoder().encode('urabrask-service-test-secret-012345') }]);
const SITE = create(SeedSiteDescriptorSchema, { siteId: 'dense-64', kind: SeedSiteKind.DENSE, shape: [64] });
const SITE_KEY = 'dense:64';
const catalog = new KarnCatalog();
const clock = new FakeClock();
const signer = new HmacSigner(RING, { clock });
const verifier = createBsdsVerifier(RING);
const artifacts = new Map<string, CompiledArtifact>();
let tensorsBefore = 0;
let root: string;
let library: UrzaLibrary;
let bus: StreamBus;
let events: (BSDSIssued | BSDSFailed)[];

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
  const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
  for (const id of ['BP009', 'BP043'])
    artifacts.set(id, await compiler.compile(catalog.get(id), catalog.defaultParameters(id), SITE, { seed: 7 }));
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urabrask-service-'));
  library = await UrzaLibrary.open({ rootDir: root, clock, bsdsVerifier: verifier });
  for (const [id, artifact] of artifacts) {
    await library.save({
      descriptor: catalog.get(id),
      siteKey: SITE_KEY,
      artifact: artifact.bytes,
      guardDigest: artifact.guardDigest,
      compileMs: 1,
      prewarm: artifact.prewarm,
    });
  }
  bus = new StreamBus({
    store: new MemoryStreamStore(),
    keyRing: RING,
    telemetry: new MemoryTelemetrySink(),
    blockMs: 20,
    reclaimIntervalMs: 20,
  });
  events = [];
  const subscription = bus.subscribe({
    group: 'tamiyo',
    consumer: 'tamiyo-0',
    types: [BusMessageType.BSDS_ISSUED, BusMessageType.BSDS_FAILED],
    handler: (delivery) => {
      if (isMessage(delivery.message, BSDSIssuedSchema) || isMessage(delivery.message, BSDSFailedSchema)) events.push(delivery.message);
    },
  });
  await subscription.ready;
});

afterEach(async () => {
  await bus.close();
  await library.close();
  await rm(root, { recursive: true, force: true });
});

async function eventually(count: number, deadlineMs = 10_000): Promise<void> {
  const start = Date.now();
  while (events.length < count) {
    if (Date.now() - start > deadlineMs) throw new Error(`saw ${events.length} of ${count} bus events within ${deadlineMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function service(): UrabraskService {
  return new UrabraskService({ library, signer, bus, crucible: new Crucible({ catalog }), clock });
}

describe('UrabraskService.certify', () => {
  it('probes, signs, stores the sheet and graph metadata in Urza, and publishes BSDSIssued', async () => {
    const urabrask = service();
    const result = await urabrask.certify({
      descriptor: catalog.get('BP043'),
      artifactBytes: artifacts.get('BP043')!.bytes,
      siteKey: SITE_KEY,
    });
    const m = result.report.measurements;
    console.log(
      `[service] BP043 gradNorm=${m.gradNorm.toExponential(3)} outputRatio=${m.outputScaleRatio.toFixed(1)} band=${HazardBand[result.bsds.hazardBand]}`,
    );
    expect(result.published).toBe(true);
    expect([HazardBand.HIGH, HazardBand.CRITICAL]).toContain(result.bsds.hazardBand);
    const stored = library.getBsds('BP043');
    expect(verifier.verify(stored!)).toEqual({ ok: true });
    expect(stored!.artifactChecksum).toBe(artifacts.get('BP043')!.checksum);
    const graph = library.getGraphMetadata('BP043');
    expect(graph!.monitors.every((monitor) => monitor.source === 'bsds')).toBe(true);
    expect(graph!.capabilities.allowedBlendModes).toEqual(['CONVEX']);
    await eventually(1);
    const issued = events[0];
    expect(isMessage(issued, BSDSIssuedSchema)).toBe(true);
    expect((issued as BSDSIssued).bsds?.blueprintId).toBe('BP043');
    expect(verifier.verify((issued as BSDSIssued).bsds!)).toEqual({ ok: true });
    expect(urabrask.stats()).toEqual({ issued: 1, failed: 0, publishErrors: 0 });
  });

  it('certifies the safe BP009 LOW', async () => {
    const result = await service().certify({
      descriptor: catalog.get('BP009'),
      artifactBytes: artifacts.get('BP009')!.bytes,
      siteKey: SITE_KEY,
    });
    expect(result.bsds.hazardBand).toBe(HazardBand.LOW);
    expect(library.getBsds('BP009')?.hazardBand).toBe(HazardBand.LOW);
  });

  it('publishes BSDSFailed and throws a typed error when the catalogued artifact cannot be probed', async () => {
    // Urza treats artifacts as opaque bytes, so a corrupted artifact can be catalogued.
    const corrupted = Uint8Array.from(artifacts.get('BP009')!.bytes);
    corrupted[corrupted.length - 1] = (corrupted[corrupted.length - 1] as number) ^ 0xff;
    await library.save({
      descriptor: catalog.get('BP009'),
      siteKey: 'dense:64-corrupt',
      artifact: corrupted,
      guardDigest: 'x',
      compileMs: 1,
      prewarm: { p50Ms: 0, p95Ms: 0 },
    });
    const urabrask = service();
    let caught: unknown;
    try {
      await urabrask.certify({ descriptor: catalog.get('BP009'), artifactBytes: corrupted, siteKey: 'dense:64-corrupt' });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.URABRASK_CERTIFY_FAILED)).toBe(true);
    expect(isEsperError((caught as Error).cause, ErrorCode.TEZZERET_ARTIFACT_INVALID)).toBe(true);
    expect(library.getBsds('BP009')).toBeUndefined();
    await eventually(1);
    const failed = events[0] as BSDSFailed;
    expect(isMessage(failed, BSDSFailedSchema)).toBe(true);
    expect(failed.blueprintId).toBe('BP009');
    expect(failed.reason).toContain(ErrorCode.TEZZERET_ARTIFACT_INVALID);
    expect(urabrask.stats()).toEqual({ issued: 0, failed: 1, publishErrors: 0 });
  });

  it('refuses bytes that differ from the catalogued artifact, publishing BSDSFailed with the reason', async () => {
    let caught: unknown;
    try {
      await service().certify({ descriptor: catalog.get('BP009'), artifactBytes: artifacts.get('BP043')!.bytes, siteKey: SITE_KEY });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.URABRASK_CERTIFY_FAILED)).toBe(true);
    expect(isEsperError((caught as Error).cause, ErrorCode.URZA_INTEGRITY_FAILURE)).toBe(true);
    await eventually(1);
    expect((events[0] as BSDSFailed).reason).toContain(ErrorCode.URZA_INTEGRITY_FAILURE);
  });

  it('certifies without a bus, reporting nothing published', async () => {
    const result = await new UrabraskService({ library, signer, crucible: new Crucible({ catalog }), clock }).certify({
      descriptor: catalog.get('BP009'),
      artifactBytes: artifacts.get('BP009')!.bytes,
      siteKey: SITE_KEY,
    });
    expect(result.published).toBe(false);
    expect(verifier.verify(library.getBsds('BP009')!)).toEqual({ ok: true });
  });
});
