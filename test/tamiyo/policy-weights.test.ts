/**
 * Policy weights: exact round trip, the architecture string, and rejection (typed
 * TAMIYO_POLICY_INVALID, nothing left allocated) of bad magic, truncation, corruption,
 * architecture mismatch, missing/extra/misshapen variables and non-finite weights.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_LIMITS, ErrorCode, isEsperError } from '../../src/core/index.js';
import { gnnConfigFor, type GnnConfig } from '../../src/tamiyo/gnn-config.js';
import { TamiyoGnn } from '../../src/tamiyo/gnn.js';
import {
  architectureOf,
  configOfArchitecture,
  encodePolicyBytes,
  loadPolicy,
  policyChecksum,
  policyDigest,
  POLICY_ARCHITECTURE_ID,
  readPolicyFrame,
  serialisePolicy,
} from '../../src/tamiyo/policy-weights.js';
import { decodeWeightsFromBytes, initTensorBackend, seededRng, tf, type EncodedWeights } from '../../src/tensor/index.js';
import { graphOfSize, TEST_RELATIONS } from './fixtures/graphs.js';
import { errorOf } from './fixtures/errors.js';

const SMALL = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 6, heads: 2 });

beforeAll(async () => {
  await initTensorBackend();
});

function serialised(config: GnnConfig = SMALL, seed = 1, version = 'policy-v1'): Uint8Array {
  const gnn = new TamiyoGnn(config, seededRng(seed));
  try {
    return serialisePolicy(gnn, { version });
  } finally {
    gnn.dispose();
  }
}

/** Expects `loadPolicy` to refuse with TAMIYO_POLICY_INVALID and leave no tensors. */
function expectRejected(bytes: Uint8Array, expected?: GnnConfig): EsperErrorLike {
  const before = tf.memory().numTensors;
  const error = errorOf(() => loadPolicy(bytes, expected));
  expect(isEsperError(error, ErrorCode.TAMIYO_POLICY_INVALID)).toBe(true);
  expect(tf.memory().numTensors).toBe(before);
  return error as EsperErrorLike;
}

interface EsperErrorLike {
  readonly message: string;
}

/** Re-frames a policy after editing its decoded weights (digest recomputed: structurally valid). */
function reframed(bytes: Uint8Array, edit: (weights: EncodedWeights) => EncodedWeights, architecture?: string): Uint8Array {
  const { header, weights } = readPolicyFrame(bytes);
  return encodePolicyBytes(
    { architecture: architecture ?? header.architecture, version: header.version },
    edit(decodeWeightsFromBytes(weights)),
  );
}

describe('serialisePolicy / loadPolicy', () => {
  it('round-trips weights exactly: the loaded policy gives bit-identical outputs', () => {
    const original = new TamiyoGnn(SMALL, seededRng(3));
    const graph = graphOfSize(seededRng(3), 30);
    try {
      const bytes = serialisePolicy(original, { version: 'policy-v42' });
      const loaded = loadPolicy(bytes, SMALL);
      try {
        expect(loaded.version).toBe('policy-v42');
        expect(loaded.architecture).toBe(architectureOf(SMALL));
        expect(loaded.checksum).toBe(policyChecksum(bytes));
        expect(loaded.checksum).toMatch(/^[0-9a-f]{64}$/);
        const a = original.forward(graph);
        const b = loaded.gnn.forward(graph);
        expect([...b.actionLogits]).toEqual([...a.actionLogits]);
        expect([...b.seedScores]).toEqual([...a.seedScores]);
        expect(b.value).toBe(a.value);
        // Same bytes again: serialisation is deterministic.
        expect(policyChecksum(serialisePolicy(loaded.gnn, { version: 'policy-v42' }))).toBe(loaded.checksum);
      } finally {
        loaded.gnn.dispose();
      }
    } finally {
      original.dispose();
    }
  });

  it('loads from a Node Buffer at any offset in its pool (as readFile returns): a copy is aligned, a view is not', () => {
    const original = new TamiyoGnn(SMALL, seededRng(4));
    const graph = graphOfSize(seededRng(4), 20);
    const bytes = serialisePolicy(original, { version: 'v-buffer' });
    for (const shift of [1, 2, 3]) {
      const pool = Buffer.alloc(bytes.length + shift + 16, 0x5a);
      pool.set(bytes, shift);
      const loaded = loadPolicy(pool.subarray(shift, shift + bytes.length), SMALL);
      try {
        expect([...loaded.gnn.forward(graph).actionLogits]).toEqual([...original.forward(graph).actionLogits]);
      } finally {
        loaded.gnn.dispose();
      }
    }
    original.dispose();
  });

  it("carries a learned policy's decision cadence in its header (absent when not given), and refuses a bad one", () => {
    const gnn = new TamiyoGnn(SMALL, seededRng(5));
    try {
      const withCadence = loadPolicy(serialisePolicy(gnn, { version: 'v', decisionEveryEpochs: 8 }), SMALL);
      expect(withCadence.decisionEveryEpochs).toBe(8);
      withCadence.gnn.dispose();
      const without = loadPolicy(serialisePolicy(gnn, { version: 'v' }), SMALL);
      expect(without.decisionEveryEpochs).toBeUndefined();
      without.gnn.dispose();
      expect(() => serialisePolicy(gnn, { version: 'v', decisionEveryEpochs: 0 })).toThrow(/decisionEveryEpochs/);
    } finally {
      gnn.dispose();
    }
  });

  it('loads without an expected config, rebuilding the architecture from the header', () => {
    const loaded = loadPolicy(serialised());
    try {
      expect(loaded.gnn.config.hidden).toBe(8);
      expect(loaded.gnn.config.relations).toEqual(TEST_RELATIONS);
    } finally {
      loaded.gnn.dispose();
    }
  });

  it('exposes the SHA-256 digest for PolicyUpdate.checksum', () => {
    const bytes = serialised();
    const digest = policyDigest(bytes);
    expect(digest).toHaveLength(32);
    expect(Buffer.from(digest).toString('hex')).toBe(policyChecksum(bytes));
  });

  it('fits the default-size policy into one PolicyUpdate message', () => {
    const bytes = serialised(gnnConfigFor(TEST_RELATIONS));
    expect(bytes.byteLength).toBeLessThan(CONTRACT_LIMITS.messageMaxBytes - 64 * 1024);
  });

  it('refuses an empty version', () => {
    const gnn = new TamiyoGnn(SMALL, seededRng(1));
    try {
      expect(
        isEsperError(
          errorOf(() => serialisePolicy(gnn, { version: '' })),
          ErrorCode.INVALID_ARGUMENT,
        ),
      ).toBe(true);
    } finally {
      gnn.dispose();
    }
  });
});

describe('architectureOf', () => {
  it('is canonical JSON (sorted keys) naming the id, version and every config field', () => {
    const text = architectureOf(SMALL);
    const parsed = JSON.parse(text) as { id: string; version: number; config: Record<string, unknown> };
    expect(parsed.id).toBe(POLICY_ARCHITECTURE_ID);
    expect(Object.keys(parsed)).toEqual(['config', 'id', 'version']);
    expect(Object.keys(parsed.config)).toEqual([...Object.keys(parsed.config)].sort());
    expect(parsed.config).toMatchObject({ hidden: 8, gatHidden: 6, heads: 2, actionClasses: 32 });
    expect(configOfArchitecture(text)).toMatchObject({ hidden: 8, relations: TEST_RELATIONS });
  });

  it('does not depend on key order, but does on sizes and relation order', () => {
    const shuffled = { ...SMALL, nodeDims: Object.fromEntries(Object.entries(SMALL.nodeDims).reverse()) } as GnnConfig;
    expect(architectureOf(shuffled)).toBe(architectureOf(SMALL));
    expect(architectureOf({ ...SMALL, hidden: 9 })).not.toBe(architectureOf(SMALL));
    expect(architectureOf({ ...SMALL, relations: [...SMALL.relations].reverse() })).not.toBe(architectureOf(SMALL));
  });
});

describe('loadPolicy rejects', () => {
  it('bad magic', () => {
    const bytes = serialised();
    bytes[0] = 0x58;
    expect(expectRejected(bytes).message).toMatch(/magic/);
  });

  it('truncated payloads of any length', () => {
    const bytes = serialised();
    for (const length of [0, 10, 47, bytes.byteLength / 2, bytes.byteLength - 1]) expectRejected(bytes.subarray(0, Math.floor(length)));
  });

  it('a corrupted byte (digest mismatch)', () => {
    const bytes = serialised();
    bytes[bytes.byteLength - 100] = (bytes[bytes.byteLength - 100] as number) ^ 0x01;
    expect(expectRejected(bytes).message).toMatch(/digest/);
  });

  it('an architecture different from the expected one', () => {
    expect(expectRejected(serialised(), { ...SMALL, hidden: 16 }).message).toMatch(/architecture mismatch/);
    const fewer = gnnConfigFor(TEST_RELATIONS.slice(0, -1).concat(), { hidden: 8, gatHidden: 6, heads: 2 });
    expectRejected(serialised(), fewer);
  });

  it('an unknown architecture id or an invalid config in the header', () => {
    const bytes = serialised();
    const foreign = architectureOf(SMALL).replace(`"id":"${POLICY_ARCHITECTURE_ID}"`, '"id":"other"');
    expect((expectRejected(reframed(bytes, (w) => w, foreign)) as unknown as { details: Record<string, unknown> }).details['paths']).toBe(
      '$.id',
    );
    const broken = architectureOf(SMALL).replace('"hidden":8', '"hidden":-8');
    expectRejected(reframed(bytes, (w) => w, broken));
  });

  it('a mistyped header or architecture field, naming the source and the field', () => {
    const bytes = serialised();
    const { header, weights } = readPolicyFrame(bytes);
    const numericVersion = encodePolicyBytes({ ...header, version: 42 as unknown as string }, decodeWeightsFromBytes(weights));
    const error = errorOf(() => loadPolicy(numericVersion, undefined, '/var/tamiyo/policies/p.espl'));
    expect(isEsperError(error, ErrorCode.TAMIYO_POLICY_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({
      path: '/var/tamiyo/policies/p.espl',
      paths: '$.version',
    });
    expect((error as Error).message).toContain('/var/tamiyo/policies/p.espl');
    const stringHeads = architectureOf(SMALL).replace('"heads":2', '"heads":"2"');
    const mistyped = errorOf(() =>
      loadPolicy(
        reframed(bytes, (w) => w, stringHeads),
        undefined,
        'update u1 payload',
      ),
    );
    expect((mistyped as { details: Record<string, unknown> }).details).toMatchObject({
      path: 'update u1 payload',
      paths: '$.config.heads',
    });
  });

  it('a missing variable', () => {
    const bytes = reframed(serialised(), ({ specs, data }) => {
      const last = specs[specs.length - 1];
      const size = (last?.shape ?? []).reduce((a, b) => a * b, 1) * 4;
      return { specs: specs.slice(0, -1), data: data.slice(0, data.byteLength - size) };
    });
    expect(expectRejected(bytes).message).toMatch(/missing/);
  });

  it('an extra variable', () => {
    const bytes = reframed(serialised(), ({ specs, data }) => {
      const out = new Uint8Array(data.byteLength + 4);
      out.set(data);
      return { specs: [...specs, { name: 'head/extra/b', shape: [1], dtype: 'float32' }], data: out };
    });
    expect(expectRejected(bytes).message).toMatch(/unexpected 'head\/extra\/b'/);
  });

  it('a misshapen variable', () => {
    const bytes = reframed(serialised(), ({ specs, data }) => ({
      specs: specs.map((s) => (s.name === 'head/value/w' ? { ...s, shape: [1, s.shape[0] as number] } : s)),
      data,
    }));
    expect(expectRejected(bytes).message).toMatch(/head\/value\/w/);
  });

  it('a non-finite weight', () => {
    const bytes = reframed(serialised(), ({ specs, data }) => {
      const copy = data.slice();
      new DataView(copy.buffer).setFloat32(8, Number.NaN, true);
      return { specs, data: copy };
    });
    expect(expectRejected(bytes).message).toMatch(/not finite/);
  });

  it('any single-byte flip or truncation: fails typed, or (never, with the digest) loads with a different checksum', () => {
    const bytes = serialised(gnnConfigFor(TEST_RELATIONS, { hidden: 4, gatHidden: 3, heads: 1 }));
    const original = policyChecksum(bytes);
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: bytes.byteLength - 1 }), mask: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: bytes.byteLength - 1 }), mask: fc.constant(0) }),
    );
    let loadedCount = 0;
    fc.assert(
      fc.property(mutation, ({ kind, at, mask }) => {
        const mutated = kind === 'flip' ? bytes.slice() : bytes.slice(0, at);
        if (kind === 'flip') mutated[at] = (mutated[at] as number) ^ mask;
        const before = tf.memory().numTensors;
        try {
          const loaded = loadPolicy(mutated);
          loadedCount += 1;
          expect(loaded.checksum).not.toBe(original);
          loaded.gnn.dispose();
        } catch (error) {
          expect(isEsperError(error, ErrorCode.TAMIYO_POLICY_INVALID)).toBe(true);
        }
        expect(tf.memory().numTensors).toBe(before);
      }),
      { numRuns: 300 },
    );
    expect(loadedCount).toBe(0);
  });
});
