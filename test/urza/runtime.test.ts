import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { TelemetryLevel } from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { tf } from '../../src/tensor/index.js';
import { loadArtifact, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { UrzaLibrary } from '../../src/urza/library.js';
import { bp005Save, compileBp005, SITE_KEY } from './fixtures/bp005-artifact.js';
import { UrzaRuntime } from '../../src/urza/runtime.js';
import { formatUrzaArtifactRef, parseUrzaArtifactRef } from '../../src/urza/artifact-ref.js';

const catalog = new KarnCatalog();
let compiled: CompiledArtifact;
let root: string;
let tensorsBefore = 0;

beforeAll(async () => {
  compiled = await compileBp005(catalog);
  tensorsBefore = tf.memory().numTensors;
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'urza-runtime-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function saved(telemetry?: MemoryTelemetrySink): Promise<UrzaLibrary> {
  const library = await UrzaLibrary.open({ rootDir: root, ...(telemetry === undefined ? {} : { telemetry }) });
  await library.save(bp005Save(catalog, compiled));
  return library;
}

function outputOf(module: { apply(x: tf.Tensor): tf.Tensor }): Float32Array {
  return tf.tidy(() => module.apply(tf.ones([2, 256])).dataSync() as Float32Array);
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('UrzaRuntime.fetchKernel', () => {
  it('returns the module rebuilt from the verified artifact, its checksum and the fetch latency', async () => {
    await using library = await saved();
    const runtime = new UrzaRuntime({ library, catalog });
    const fetched = await runtime.fetchKernel('BP005', SITE_KEY, { scope: 'runtime-a' });
    const reference = loadArtifact(compiled.bytes, { catalog, scope: 'runtime-ref' });
    try {
      expect(fetched.checksum).toBe(compiled.checksum);
      expect(fetched.guardDigest).toBe(compiled.guardDigest);
      expect(fetched.siteKey).toBe(SITE_KEY);
      expect(fetched.fetchMs).toBeGreaterThanOrEqual(0);
      expect(fetched.module.blueprintId).toBe('BP005');
      expect(fetched.module.variables.every((v) => v.name.startsWith('runtime-a/'))).toBe(true);
      expect(outputOf(fetched.module)).toEqual(outputOf(reference));
    } finally {
      fetched.module.dispose();
      reference.dispose();
    }
  });

  it('passes the library NOT_FOUND error through for an unknown blueprint', async () => {
    await using library = await saved();
    const runtime = new UrzaRuntime({ library, catalog });
    const error = await errorOf(runtime.fetchKernel('BP404', SITE_KEY));
    expect(isEsperError(error, ErrorCode.URZA_NOT_FOUND)).toBe(true);
  });

  it('refuses a corrupted artifact with the integrity failure and its CRITICAL event', async () => {
    const telemetry = new MemoryTelemetrySink();
    await using library = await saved(telemetry);
    const file = path.join(library.options.artifactDir, `${compiled.checksum}.esa`);
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0x01;
    await writeFile(file, bytes);
    const runtime = new UrzaRuntime({ library, catalog });
    const error = await errorOf(runtime.fetchKernel('BP005', SITE_KEY));
    expect(isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)).toBe(true);
    const events = telemetry.events('integrity_failure');
    expect(events).toHaveLength(1);
    expect(events[0]?.level).toBe(TelemetryLevel.CRITICAL);
    expect(events[0]?.attributes['reason']).toBe('checksum_mismatch');
  });
});

describe('urza artifact references', () => {
  it('round-trips blueprint id and a site key with reserved characters', () => {
    const ref = { blueprintId: 'BP005', siteKey: 'conv:16x16/32 a' };
    const text = formatUrzaArtifactRef(ref);
    expect(text.startsWith('urza://BP005/')).toBe(true);
    expect(parseUrzaArtifactRef(text)).toEqual(ref);
  });

  it('rejects text that is not an urza reference', () => {
    for (const text of ['/tmp/x.esa', 'urza://BP005', 'urza:///dense', 'urza://a/b/c']) {
      expect(() => parseUrzaArtifactRef(text)).toThrow(/urza artifact reference/);
    }
  });
});
