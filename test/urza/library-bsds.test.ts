import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { BSDSSchema, HazardBand, SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { decodeArtifact, TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { Crucible, issueBsds, verifyBsds } from '../../src/urabrask/index.js';
import { buildGraphMetadata } from '../../src/urza/graph-metadata.js';
import { UrzaLibrary } from '../../src/urza/library.js';

const SITE = create(SeedSiteDescriptorSchema, { siteId: 'dense-64', kind: SeedSiteKind.DENSE, shape: [64] });
const SITE_KEY = 'dense:64';
const catalog = new KarnCatalog();
const clock = new FakeClock();
const signer = new HmacSigner(
  new KeyRing([{ keyId: 'urabrask-k1', secret: new TextEncoder().encode('urza-bsds-test-secret-0123456789') }]),
  { clock },
);
let compiled: CompiledArtifact;
let tensorsBefore = 0;
let root: string;
let library: UrzaLibrary;

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
  compiled = await new TezzeretCompiler({ catalog, prewarmSamples: 1 }).compile(
    catalog.get('BP043'),
    catalog.defaultParameters('BP043'),
    SITE,
    { seed: 3 },
  );
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urza-bsds-'));
  library = await UrzaLibrary.open({ rootDir: root, clock });
  await library.save({
    descriptor: catalog.get('BP043'),
    siteKey: SITE_KEY,
    artifact: compiled.bytes,
    guardDigest: compiled.guardDigest,
    compileMs: compiled.compileMs,
    prewarm: compiled.prewarm,
  });
});

afterEach(async () => {
  await library.close();
  await rm(root, { recursive: true, force: true });
});

function signedSheet() {
  return issueBsds(signer, catalog.get('BP043'), new Crucible({ catalog }).probe(compiled.bytes), { clock });
}

describe('UrzaLibrary BSDS', () => {
  it('round-trips a signed sheet whose signature still verifies after the library is reopened', async () => {
    const bsds = signedSheet();
    expect(library.getBsds('BP043')).toBeUndefined();
    library.saveBsds('BP043', bsds);
    await library.close();
    library = await UrzaLibrary.open({ rootDir: root, clock });
    const loaded = library.getBsds('BP043');
    expect(loaded).toBeDefined();
    expect(verifyBsds(signer, loaded!)).toBe(true);
    expect(loaded!.hazardBand).toBe(bsds.hazardBand);
    expect([HazardBand.HIGH, HazardBand.CRITICAL]).toContain(loaded!.hazardBand);
    expect(loaded!.artifactChecksum).toBe(compiled.checksum);
    expect(loaded!.security?.keyId).toBe('urabrask-k1');
  });

  it('keeps the sheet when the artifact is saved again', async () => {
    library.saveBsds('BP043', signedSheet());
    await library.save({
      descriptor: catalog.get('BP043'),
      siteKey: 'dense:64-again',
      artifact: compiled.bytes,
      guardDigest: compiled.guardDigest,
      compileMs: compiled.compileMs,
      prewarm: compiled.prewarm,
    });
    expect(verifyBsds(signer, library.getBsds('BP043')!)).toBe(true);
  });

  it('refuses an unsigned sheet, a sheet of another blueprint, and an uncatalogued blueprint', () => {
    const bsds = signedSheet();
    const unsigned = create(BSDSSchema, { ...bsds, security: undefined });
    expect(() => library.saveBsds('BP043', unsigned)).toThrow(/signed/);
    expect(library.getBsds('BP043')).toBeUndefined();
    expect(() => library.saveBsds('BP009', bsds)).toThrow(/BP009/);
    let caught: unknown;
    try {
      library.saveBsds('BP999', { ...bsds, blueprintId: 'BP999' });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.URZA_NOT_FOUND)).toBe(true);
  });
});

describe('UrzaLibrary graph metadata', () => {
  it('round-trips graph metadata with its adjacency and monitors', async () => {
    const bsds = signedSheet();
    const metadata = buildGraphMetadata(catalog.get('BP043'), decodeArtifact(compiled.bytes).header, { bsds });
    expect(library.getGraphMetadata('BP043')).toBeUndefined();
    library.saveGraphMetadata('BP043', metadata);
    await library.close();
    library = await UrzaLibrary.open({ rootDir: root, clock });
    const loaded = library.getGraphMetadata('BP043');
    expect(loaded).toEqual(metadata);
    expect(loaded!.monitors.length).toBeGreaterThan(0);
    expect(loaded!.monitors.every((m) => m.source === 'bsds')).toBe(true);
    expect(loaded!.layers.length).toBeGreaterThan(0);
  });

  it('refuses metadata of another blueprint and an uncatalogued blueprint', () => {
    const metadata = buildGraphMetadata(catalog.get('BP043'), decodeArtifact(compiled.bytes).header);
    expect(() => library.saveGraphMetadata('BP009', metadata)).toThrow(/BP009/);
    let caught: unknown;
    try {
      library.saveGraphMetadata('BP999', { ...metadata, blueprintId: 'BP999' });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.URZA_NOT_FOUND)).toBe(true);
  });
});
