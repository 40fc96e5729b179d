/**
 * Safety data sheets and graph metadata in a real catalog.db on disk: what Urza serves is
 * decoded strictly and verified every time; a sheet edited in the database (old signature
 * kept), signed by an unknown key, truncated, or moved to another blueprint is an integrity
 * failure — never served, CRITICAL, counted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  BSDSSchema,
  HandlingClass,
  HazardBand,
  MessagePriority,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  TelemetryLevel,
  type BSDS,
} from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { decodeArtifact, TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { Crucible, issueBsds } from '../../src/urabrask/index.js';
import { createBsdsVerifier } from '../../src/urza/bsds-verifier.js';
import { buildGraphMetadata } from '../../src/urza/graph-metadata.js';
import { UrzaLibrary } from '../../src/urza/library.js';
import { UrzaIntegrityReason } from '../../src/urza/names.js';

const SITE = create(SeedSiteDescriptorSchema, { siteId: 'dense-64', kind: SeedSiteKind.DENSE, shape: [64] });
const SITE_KEY = 'dense:64';
const catalog = new KarnCatalog();
const clock = new FakeClock();
const ring = new KeyRing([{ keyId: 'urabrask-k1', secret: new TextEncoder().encode('urza-bsds-test-secret-0123456789') }]);
const signer = new HmacSigner(ring, { clock });
const verifier = createBsdsVerifier(ring);
let compiled: { BP043: CompiledArtifact; BP009: CompiledArtifact };
let tensorsBefore = 0;
let root: string;
let telemetry: MemoryTelemetrySink;
let library: UrzaLibrary;

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
  const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
  const compile = (id: string): Promise<CompiledArtifact> =>
    compiler.compile(catalog.get(id), catalog.defaultParameters(id), SITE, { seed: 3 });
  compiled = { BP043: await compile('BP043'), BP009: await compile('BP009') };
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

const open = (): Promise<UrzaLibrary> => UrzaLibrary.open({ rootDir: root, clock, telemetry, bsdsVerifier: verifier });

async function saveArtifact(id: 'BP043' | 'BP009', artifact: CompiledArtifact = compiled[id], siteKey = SITE_KEY): Promise<void> {
  await library.save({
    descriptor: catalog.get(id),
    siteKey,
    artifact: artifact.bytes,
    guardDigest: artifact.guardDigest,
    compileMs: artifact.compileMs,
    prewarm: artifact.prewarm,
  });
}

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urza-bsds-'));
  telemetry = new MemoryTelemetrySink();
  library = await open();
  await saveArtifact('BP043');
  await saveArtifact('BP009');
});

afterEach(async () => {
  await library.close();
  await rm(root, { recursive: true, force: true });
});

function signedSheet(id: 'BP043' | 'BP009' = 'BP043'): BSDS {
  return issueBsds(signer, catalog.get(id), new Crucible({ catalog }).probe(compiled[id].bytes), { clock });
}

/** Closes the library, rewrites the stored sheet of `id` in catalog.db, and reopens it. */
async function editStoredSheet(id: string, edit: (blob: Buffer) => Uint8Array): Promise<void> {
  await library.close();
  const db = new Database(path.join(root, 'catalog.db'));
  try {
    const row = db.prepare<[string], { bsds: Buffer }>('SELECT bsds FROM blueprints WHERE blueprint_id = ?').get(id);
    db.prepare('UPDATE blueprints SET bsds = ? WHERE blueprint_id = ?').run(Buffer.from(edit(row!.bsds)), id);
  } finally {
    db.close();
  }
  library = await open();
}

/** Re-encodes the stored sheet with `fields` changed and its old signature kept. */
const keepSignature =
  (fields: Partial<BSDS>) =>
  (blob: Buffer): Uint8Array =>
    toBinary(BSDSSchema, { ...fromBinary(BSDSSchema, blob), ...fields });

function expectUnavailable(id: string, reason: UrzaIntegrityReason, detail?: string): void {
  let caught: unknown;
  try {
    library.getBsds(id);
  } catch (error) {
    caught = error;
  }
  expect(isEsperError(caught, ErrorCode.URZA_INTEGRITY_FAILURE), String(caught)).toBe(true);
  expect((caught as { details: Record<string, unknown> }).details).toMatchObject({
    blueprintId: id,
    reason,
    ...(detail === undefined ? {} : { detail }),
  });
  expect(library.stats().integrityFailures).toBe(1);
  const events = telemetry.packets.flatMap((p) => p.events.map((e) => ({ e, priority: p.priority })));
  const failure = events.find(({ e }) => e.description === 'integrity_failure');
  expect(failure?.e.level).toBe(TelemetryLevel.CRITICAL);
  expect(failure?.priority).toBe(MessagePriority.CRITICAL);
  expect(failure?.e.attributes).toMatchObject({ blueprint_id: id, reason });
}

describe('UrzaLibrary safety data sheets', () => {
  it('serves a signed sheet that still verifies after the library is reopened', async () => {
    const bsds = signedSheet();
    expect(library.getBsds('BP043')).toBeUndefined();
    library.saveBsds('BP043', bsds);
    await library.close();
    library = await open();
    const loaded = library.getBsds('BP043');
    expect(loaded).toEqual(fromBinary(BSDSSchema, toBinary(BSDSSchema, bsds)));
    expect([HazardBand.HIGH, HazardBand.CRITICAL]).toContain(loaded!.hazardBand);
    expect(library.stats().integrityFailures).toBe(0);
  });

  describe('a sheet edited in catalog.db with its old signature kept is not served', () => {
    it.each([
      ['hazard band downgraded to LOW', 'BP043', { hazardBand: HazardBand.LOW }],
      ['handling class relaxed to STANDARD', 'BP043', { handlingClass: HandlingClass.STANDARD }],
      ['risk score lowered', 'BP043', { riskScore: 0.05 }],
      ['hazard band of a safe blueprint raised to CRITICAL', 'BP009', { hazardBand: HazardBand.CRITICAL }],
      ['handling class of a safe blueprint set to QUARANTINE', 'BP009', { handlingClass: HandlingClass.QUARANTINE }],
    ] as const)('%s', async (_label, id, fields) => {
      library.saveBsds(id, signedSheet(id));
      await editStoredSheet(id, keepSignature(fields));
      expectUnavailable(id, UrzaIntegrityReason.BSDS_UNVERIFIED, 'bad_signature');
    });
  });

  it('refuses a stored sheet signed by a key the ring does not hold', async () => {
    library.saveBsds('BP043', signedSheet());
    const stranger = new HmacSigner(new KeyRing([{ keyId: 'stranger', secret: new TextEncoder().encode('not-the-urza-ring-secret-000') }]));
    await editStoredSheet('BP043', (blob) =>
      toBinary(BSDSSchema, stranger.sign(BSDSSchema, { ...fromBinary(BSDSSchema, blob), hazardBand: HazardBand.LOW })),
    );
    expectUnavailable('BP043', UrzaIntegrityReason.BSDS_UNVERIFIED, 'unknown_key');
  });

  it('refuses a validly signed sheet of another blueprint copied into the row', async () => {
    library.saveBsds('BP043', signedSheet());
    const safeSheet = toBinary(BSDSSchema, signedSheet('BP009'));
    await editStoredSheet('BP043', () => safeSheet);
    expectUnavailable('BP043', UrzaIntegrityReason.BSDS_MISMATCH);
  });

  it('names the blueprint of a truncated sheet instead of a bare decode error', async () => {
    library.saveBsds('BP043', signedSheet());
    await editStoredSheet('BP043', (blob) => blob.subarray(0, blob.length - 7));
    expectUnavailable('BP043', UrzaIntegrityReason.BSDS_UNDECODABLE);
  });

  it('drops the sheet and graph metadata when the artifact they describe is replaced', async () => {
    const bsds = signedSheet();
    library.saveBsds('BP043', bsds);
    library.saveGraphMetadata('BP043', buildGraphMetadata(catalog.get('BP043'), decodeArtifact(compiled.BP043.bytes).header, { bsds }));
    // Another site with the same bytes keeps it; new bytes at the sheet's site drop it.
    await saveArtifact('BP043', compiled.BP043, 'dense:64-again');
    expect(library.getBsds('BP043')?.security?.signature).toEqual(bsds.security?.signature);
    await saveArtifact('BP043', compiled.BP009);
    await saveArtifact('BP043', compiled.BP009, 'dense:64-again');
    expect(library.getBsds('BP043')).toBeUndefined();
    expect(library.getGraphMetadata('BP043')).toBeUndefined();
    expect(library.stats().integrityFailures).toBe(0);
  });

  it('refuses to store an unsigned sheet, one signed by an unknown key, one of another blueprint or artifact', async () => {
    const bsds = signedSheet();
    const stranger = new HmacSigner(new KeyRing([{ keyId: 'stranger', secret: new TextEncoder().encode('not-the-urza-ring-secret-000') }]));
    for (const bad of [create(BSDSSchema, { ...bsds, security: undefined }), stranger.sign(BSDSSchema, bsds)]) {
      expect(() => library.saveBsds('BP043', bad)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
    expect(() => library.saveBsds('BP009', bsds)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    const otherArtifact = signer.sign(BSDSSchema, { ...bsds, artifactChecksum: 'ef'.repeat(32) });
    expect(() => library.saveBsds('BP043', otherArtifact)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => library.saveBsds('BP999', signer.sign(BSDSSchema, { ...bsds, blueprintId: 'BP999' }))).toThrow(
      expect.objectContaining({ code: ErrorCode.URZA_NOT_FOUND }),
    );
    expect(library.getBsds('BP043')).toBeUndefined();
  });

  it('refuses to store or serve sheets without a verifier', async () => {
    await using bare = await UrzaLibrary.open({ rootDir: path.join(root, 'bare') });
    expect(() => bare.getBsds('BP043')).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
    expect(() => bare.saveBsds('BP043', signedSheet())).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
  });
});

describe('UrzaLibrary graph metadata', () => {
  it('round-trips graph metadata with its adjacency and monitors', async () => {
    const bsds = signedSheet();
    const metadata = buildGraphMetadata(catalog.get('BP043'), decodeArtifact(compiled.BP043.bytes).header, { bsds });
    expect(library.getGraphMetadata('BP043')).toBeUndefined();
    library.saveGraphMetadata('BP043', metadata);
    await library.close();
    library = await open();
    const loaded = library.getGraphMetadata('BP043');
    expect(loaded).toEqual(metadata);
    expect(loaded!.monitors.every((m) => m.source === 'bsds')).toBe(true);
  });

  it('refuses metadata of another blueprint and an uncatalogued blueprint', () => {
    const metadata = buildGraphMetadata(catalog.get('BP043'), decodeArtifact(compiled.BP043.bytes).header);
    expect(() => library.saveGraphMetadata('BP009', metadata)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    expect(() => library.saveGraphMetadata('BP999', { ...metadata, blueprintId: 'BP999' })).toThrow(
      expect.objectContaining({ code: ErrorCode.URZA_NOT_FOUND }),
    );
  });

  it.each([
    ['not JSON', () => '{"version":1,'],
    ['of another layout', (json: string) => json.replace('"monitors"', '"watchers"')],
    ['of another blueprint', (json: string) => json.replace(/"blueprintId":"BP043"/, '"blueprintId":"BP009"')],
  ])('names the blueprint whose stored graph metadata is %s', async (_label, edit) => {
    library.saveGraphMetadata('BP043', buildGraphMetadata(catalog.get('BP043'), decodeArtifact(compiled.BP043.bytes).header));
    await library.close();
    const db = new Database(path.join(root, 'catalog.db'));
    const row = db.prepare<[], { json: string }>("SELECT graph_metadata_json AS json FROM blueprints WHERE blueprint_id = 'BP043'").get();
    db.prepare("UPDATE blueprints SET graph_metadata_json = ? WHERE blueprint_id = 'BP043'").run(edit(row!.json));
    db.close();
    library = await open();
    expect(() => library.getGraphMetadata('BP043')).toThrow(
      expect.objectContaining({
        code: ErrorCode.URZA_INTEGRITY_FAILURE,
        details: expect.objectContaining({ blueprintId: 'BP043', reason: UrzaIntegrityReason.GRAPH_METADATA_INVALID }),
      }),
    );
  });
});
