import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind, siteOutputShape, type SeedSiteDescriptor } from '../../src/leyline/index.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { KarnCatalog, type SeedModule } from '../../src/karn/index.js';
import { decodeArtifact } from '../../src/tezzeret/artifact.js';
import { quantile } from '../../src/core/index.js';
import { loadArtifact, TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/compiler.js';
import { TezzeretMetric } from '../../src/tezzeret/names.js';
import { convWidenSite } from '../support/conv-widen-site.js';

const site = (kind: SeedSiteKind, shape: number[]): SeedSiteDescriptor =>
  create(SeedSiteDescriptorSchema, { siteId: `s-${shape.join('x')}`, kind, shape });

const DENSE = site(SeedSiteKind.DENSE, [256]);
const CONV = site(SeedSiteKind.CONV, [16, 16, 32]);
const CONV_WIDE = site(SeedSiteKind.CONV, [8, 8, 64]);
const WIDEN = create(SeedSiteDescriptorSchema, { siteId: 's-widen', kind: SeedSiteKind.WIDEN, shape: [784], outputShape: [256] });
const WIDEN_CONV_NEXT = convWidenSite([16, 16, 3], [8, 8, 8]);
const WIDEN_CONV_HEAD = convWidenSite([8, 8, 4], [10]);
const BENCH_SITES = [DENSE, CONV, CONV_WIDE, WIDEN, WIDEN_CONV_NEXT, WIDEN_CONV_HEAD] as const;
const BATCH = 2;

const catalog = new KarnCatalog();
const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 3 });

function input(s: SeedSiteDescriptor, seed: number, batch = BATCH, perExample: readonly number[] = s.shape): tf.Tensor {
  const rng = seededRng(seed);
  const shape = [batch, ...perExample];
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < values.length; i += 1) values[i] = rng.nextNormal();
  return tf.tensor(values, shape);
}

function outputOf(module: SeedModule, s: SeedSiteDescriptor): Float32Array {
  return tf.tidy(() => module.apply(input(s, 21)).dataSync() as Float32Array);
}

async function compileDefault(id: string, s: SeedSiteDescriptor, seed = 7, c = compiler): Promise<CompiledArtifact> {
  return c.compile(catalog.get(id), catalog.defaultParameters(id), s, { seed });
}

/** Bit-for-bit equality (a plain deep equal on large typed arrays is very slow). */
function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

let tensorsBefore = 0;
beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
});
afterAll(() => {
  // Every compile, load, forward and backward above freed what it made.
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

describe('compile → load', () => {
  const cases: [string, SeedSiteDescriptor][] = [
    ['BP002', DENSE], // low_rank_adapter
    ['BP009', DENSE], // residual_mlp
    ['BP022', DENSE], // self_attention
    ['BP036', DENSE], // mixture_of_experts
    ['BP013', CONV], // conv3x3_block
    ['BP015', CONV], // depthwise_separable
    ['BP016', CONV], // squeeze_excite
  ];
  for (const [id, s] of cases) {
    it(`${id} at [${s.shape.join(',')}]: the loaded artifact computes exactly what the original module computes`, async () => {
      const artifact = await compileDefault(id, s, 99);
      const original = catalog.build(id, s, { seed: 99, parameters: catalog.defaultParameters(id), scope: `orig-${id}` });
      const loaded = loadArtifact(artifact.bytes, { catalog, scope: `loaded-${id}` });
      try {
        const a = outputOf(original, s);
        const b = outputOf(loaded, s);
        expect(sameBits(b, a)).toBe(true);
        expect(loaded.family).toBe(catalog.familyOf(id).id);
      } finally {
        original.dispose();
        loaded.dispose();
      }
      expect(artifact.header.guard).toEqual({ inputShape: [1, ...s.shape], outputShape: [1, ...s.shape], dtype: 'float32' });
      expect(artifact.checksum).toMatch(/^[0-9a-f]{64}$/);
      expect(artifact.prewarm.samples).toHaveLength(3);
      expect(artifact.prewarm.p95Ms).toBeGreaterThanOrEqual(artifact.prewarm.p50Ms);
    });
  }

  it('BP056 at conv WIDEN sites: the header carries the conv path, and the loaded artifact rebuilds it and computes what the module does', async () => {
    for (const s of [WIDEN_CONV_NEXT, WIDEN_CONV_HEAD]) {
      const artifact = await compileDefault('BP056', s, 5);
      expect(artifact.header.site).toEqual({
        kind: 'WIDEN',
        shape: [...s.shape],
        outputShape: [...s.outputShape],
        convWiden: {
          conv: { size: 3, stride: 1, padding: 'SAME' },
          activation: 'RELU',
          pool: { size: 2, stride: 2, padding: 'VALID' },
          ...(s.outputShape.length === 3 ? { nextConv: { size: 3, stride: 1, padding: 'SAME' } } : {}),
        },
      });
      expect(artifact.header.guard.outputShape).toEqual([1, ...s.outputShape]);
      const original = catalog.build('BP056', s, { seed: 5, scope: 'orig-bp056' });
      const loaded = loadArtifact(artifact.bytes, { catalog, scope: 'loaded-bp056' });
      try {
        // Give V weight (zero at build) so the comparison sees the whole path.
        tf.tidy(() => {
          for (const m of [original, loaded]) m.variables[2]?.assign(tf.onesLike(m.variables[2]));
        });
        expect(sameBits(outputOf(loaded, s), outputOf(original, s))).toBe(true);
        expect(Math.max(...Array.from(outputOf(loaded, s), Math.abs))).toBeGreaterThan(0);
      } finally {
        original.dispose();
        loaded.dispose();
      }
    }
  });

  it('loads under the blueprint id scope by default and under any other scope on request', async () => {
    const artifact = await compileDefault('BP005', DENSE);
    const a = loadArtifact(artifact.bytes, { catalog });
    const b = loadArtifact(artifact.bytes, { catalog, scope: 'elsewhere' });
    try {
      expect(a.variables.every((v) => v.name.startsWith('BP005/'))).toBe(true);
      expect(b.variables.every((v) => v.name.startsWith('elsewhere/'))).toBe(true);
      expect(sameBits(outputOf(b, DENSE), outputOf(a, DENSE))).toBe(true);
    } finally {
      a.dispose();
      b.dispose();
    }
  });
});

describe('all default blueprints', () => {
  const compileMsByFamily = new Map<string, number[]>();
  const prewarmP50ByFamily = new Map<string, number[]>();
  afterAll(() => {
    const rows = [...compileMsByFamily].map(([family, ms]) => ({
      family,
      compiles: ms.length,
      meanCompileMs: Number((ms.reduce((a, b) => a + b, 0) / ms.length).toFixed(2)),
      medianPrewarmP50Ms: Number((quantile(prewarmP50ByFamily.get(family) ?? [], 0.5) ?? 0).toFixed(3)),
    }));
    console.log(`tezzeret compile timings (wasm, prewarm batch 2):\n${JSON.stringify(rows, null, 1)}`);
  });

  for (const descriptor of catalog.list()) {
    const id = descriptor.blueprintId;
    const family = catalog.familyOf(id);
    const sites = BENCH_SITES.filter((s) => family.fits(s));
    it(`${id} (${descriptor.family}) compiles, loads and runs forward+backward at every bench site it fits`, async () => {
      expect(sites.length).toBeGreaterThan(0);
      for (const s of sites) {
        const artifact = await compileDefault(id, s);
        compileMsByFamily.set(family.id, [...(compileMsByFamily.get(family.id) ?? []), artifact.compileMs]);
        prewarmP50ByFamily.set(family.id, [...(prewarmP50ByFamily.get(family.id) ?? []), artifact.prewarm.p50Ms]);
        const module = loadArtifact(artifact.bytes, { catalog, scope: `all50-${id}` });
        try {
          const report = tf.tidy(() => {
            const x = input(s, 11);
            const r = input(s, 12, BATCH, siteOutputShape(s));
            const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(module.apply(x), r)) as tf.Scalar, [...module.variables]);
            const norms = Object.values(grads).map((g) => tf.norm(g).dataSync()[0] as number);
            return { shape: module.apply(x).shape, loss: value.dataSync()[0] as number, norms, grads: Object.keys(grads).length };
          });
          expect(report.shape, `${id} at [${s.shape.join(',')}]`).toEqual([BATCH, ...siteOutputShape(s)]);
          expect(Number.isFinite(report.loss)).toBe(true);
          expect(report.grads).toBe(module.variables.length);
          expect(report.norms.every(Number.isFinite)).toBe(true);
        } finally {
          module.dispose();
        }
      }
    });
  }
});

describe('artifact structure and guard digest', () => {
  it('artifacts of different families differ in structure (header variables)', async () => {
    const signatures = new Map<string, string>();
    const seen = new Set<string>();
    for (const descriptor of catalog.list()) {
      const family = catalog.familyOf(descriptor.blueprintId);
      if (seen.has(family.id)) continue;
      seen.add(family.id);
      const s = BENCH_SITES.find((x) => family.fits(x)) as SeedSiteDescriptor;
      // Compare at one shape so only the design differs.
      const at = family.fits(CONV) ? CONV : s;
      const { header } = decodeArtifact((await compileDefault(descriptor.blueprintId, at)).bytes);
      signatures.set(family.id, JSON.stringify(header.variables));
    }
    expect(signatures.size).toBeGreaterThanOrEqual(12);
    expect(new Set(signatures.values()).size).toBe(signatures.size);
  });

  it('gives the same guard digest and bytes for the same inputs, a different digest for a different shape', async () => {
    const fixed = new TezzeretCompiler({ catalog, clock: new FakeClock({ wallMs: 1_700_000_000_000 }), prewarmSamples: 1 });
    const a = await compileDefault('BP009', DENSE, 3, fixed);
    const b = await compileDefault('BP009', DENSE, 3, fixed);
    const narrow = await compileDefault('BP009', site(SeedSiteKind.DENSE, [128]), 3, fixed);
    expect(b.guardDigest).toBe(a.guardDigest);
    expect(b.checksum).toBe(a.checksum);
    expect(Buffer.compare(b.bytes, a.bytes)).toBe(0);
    expect(narrow.guardDigest).not.toBe(a.guardDigest);
    const conv = await compileDefault('BP016', CONV, 3, fixed);
    const wide = await compileDefault('BP016', CONV_WIDE, 3, fixed);
    expect(conv.guardDigest).not.toBe(wide.guardDigest);
    // Different seed → different weights → different checksum, same guard.
    const reseeded = await compileDefault('BP009', DENSE, 4, fixed);
    expect(reseeded.guardDigest).toBe(a.guardDigest);
    expect(reseeded.checksum).not.toBe(a.checksum);
  });

  it('counts compilations and failures in the §2.4 metric names', async () => {
    const counted = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
    await compileDefault('BP001', DENSE, 1, counted);
    await expect(counted.compile(catalog.get('BP013'), catalog.defaultParameters('BP013'), DENSE, { seed: 1 })).rejects.toSatisfy(
      (e: unknown) => isEsperError(e, ErrorCode.KARN_SITE_UNSUPPORTED),
    );
    await expect(counted.compile(catalog.get('BP009'), { depth: 99 }, DENSE, { seed: 1 })).rejects.toSatisfy((e: unknown) =>
      isEsperError(e, ErrorCode.KARN_PARAMETER_INVALID),
    );
    const m = counted.metricsSnapshot();
    expect(m[TezzeretMetric.COMPILATION_TOTAL]).toBe(3);
    expect(m[TezzeretMetric.COMPILATION_FAILED]).toBe(2);
    expect(m[TezzeretMetric.LAST_COMPILE_MS]).toBeGreaterThan(0);
  });

  it('rejects a descriptor whose family disagrees with the catalog', async () => {
    const descriptor = catalog.get('BP009');
    descriptor.family = 'conv3x3_block';
    await expect(compiler.compile(descriptor, catalog.defaultParameters('BP009'), DENSE, { seed: 1 })).rejects.toSatisfy((e: unknown) =>
      isEsperError(e, ErrorCode.INVALID_ARGUMENT),
    );
  });
});

describe('damaged artifacts', () => {
  let artifact: CompiledArtifact;
  beforeAll(async () => {
    artifact = await compileDefault('BP002', DENSE);
  });

  it('rejects every truncation with TEZZERET_ARTIFACT_INVALID', () => {
    const { bytes } = artifact;
    for (const length of [0, 7, 8, 23, 24, 100, bytes.byteLength >> 1, bytes.byteLength - 1]) {
      expect(
        isEsperError(
          errorOf(() => loadArtifact(bytes.slice(0, length), { catalog })),
          ErrorCode.TEZZERET_ARTIFACT_INVALID,
        ),
        `length ${length}`,
      ).toBe(true);
    }
  });

  it('rejects a flipped byte anywhere (every prefix and header byte, every 13th weight byte)', () => {
    const { bytes } = artifact;
    const headerEnd = 24 + new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
    const positions: number[] = [];
    for (let i = 0; i < bytes.byteLength; i += i < headerEnd + 64 ? 1 : 13) positions.push(i);
    positions.push(bytes.byteLength - 1);
    for (const i of positions) {
      const damaged = bytes.slice();
      damaged[i] = (damaged[i] as number) ^ 0x5a;
      expect(
        isEsperError(
          errorOf(() => loadArtifact(damaged, { catalog })),
          ErrorCode.TEZZERET_ARTIFACT_INVALID,
        ),
        `byte ${i}`,
      ).toBe(true);
    }
  });

  it('rejects a well-formed artifact whose header does not match what Karn rebuilds', async () => {
    const { encodeArtifact } = await import('../../src/tezzeret/artifact.js');
    const { header, weights } = decodeArtifact(artifact.bytes);
    const cases = [
      { ...header, variables: header.variables.slice(1) },
      { ...header, family: 'residual_mlp' as const },
      { ...header, blueprintId: 'BP999' },
      { ...header, parameters: { scale: 1000 } },
      { ...header, site: { kind: 'CONV', shape: [16, 16, 32] } },
    ];
    for (const forged of cases) {
      const error = errorOf(() => loadArtifact(encodeArtifact(forged, weights), { catalog }));
      expect(isEsperError(error, ErrorCode.TEZZERET_ARTIFACT_INVALID), JSON.stringify(forged).slice(0, 80)).toBe(true);
    }
  });
});
