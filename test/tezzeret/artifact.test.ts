import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { ErrorCode, isEsperError, type PersistedStateError } from '../../src/core/index.js';
import {
  ARTIFACT_FORMAT_VERSION,
  ARTIFACT_PREFIX_BYTES,
  canonicalJson,
  decodeArtifact,
  encodeArtifact,
  guardDigest,
  type ArtifactHeader,
} from '../../src/tezzeret/artifact.js';

const HEADER: ArtifactHeader = {
  blueprintId: 'BP002',
  family: 'low_rank_adapter',
  parameters: { scale: 1 },
  site: { kind: 'DENSE', shape: [4] },
  guard: { inputShape: [1, 4], outputShape: [1, 4], dtype: 'float32' },
  variables: [{ name: 'down', shape: [4, 2], dtype: 'float32' }],
  seed: 5,
  compiledAt: '2026-01-01T00:00:00.000Z',
};

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('canonical JSON and guard digest', () => {
  it('sorts keys recursively and writes no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });

  it('digests the canonical guard JSON with SHA-256, independent of key order', () => {
    const text = '{"dtype":"float32","inputShape":[1,4],"outputShape":[1,4]}';
    expect(guardDigest(HEADER.guard)).toBe(createHash('sha256').update(text).digest('hex'));
    expect(guardDigest({ outputShape: [1, 4], dtype: 'float32', inputShape: [1, 4] })).toBe(guardDigest(HEADER.guard));
    expect(guardDigest({ ...HEADER.guard, inputShape: [1, 5] })).not.toBe(guardDigest(HEADER.guard));
  });
});

describe('artifact byte format', () => {
  const weights = new Uint8Array([1, 2, 3, 4, 5]);

  it('round-trips header and weights behind the ESPR-ART prefix', () => {
    const bytes = encodeArtifact(HEADER, weights);
    expect(new TextDecoder().decode(bytes.subarray(0, 8))).toBe('ESPR-ART');
    const view = new DataView(bytes.buffer);
    expect(view.getUint32(8, true)).toBe(ARTIFACT_FORMAT_VERSION);
    const headerLength = view.getUint32(12, true);
    expect(new TextDecoder().decode(bytes.subarray(ARTIFACT_PREFIX_BYTES, ARTIFACT_PREFIX_BYTES + headerLength))).toBe(
      canonicalJson(HEADER),
    );
    const decoded = decodeArtifact(bytes);
    expect(decoded.header).toEqual(HEADER);
    expect([...decoded.weights]).toEqual([...weights]);
  });

  it('rejects bad magic, unknown version, length mismatch and header schema violations', () => {
    const good = encodeArtifact(HEADER, weights);
    const badMagic = good.slice();
    badMagic[0] = 0x58;
    const badVersion = good.slice();
    new DataView(badVersion.buffer).setUint32(8, 2, true);
    const longer = new Uint8Array(good.byteLength + 1);
    longer.set(good);
    const unknownFamily = encodeArtifact({ ...HEADER, family: 'nope' as never }, weights);
    const extraField = encodeArtifact({ ...HEADER, extra: 1 } as ArtifactHeader, weights);
    const badKind = encodeArtifact({ ...HEADER, site: { kind: 'SIDEWAYS', shape: [4] } }, weights);
    const conv = { size: 3, stride: 1, padding: 'SAME' } as const;
    const widenSite = { kind: 'WIDEN', shape: [8, 8, 2], outputShape: [10] };
    const badPath = encodeArtifact(
      { ...HEADER, site: { ...widenSite, convWiden: { conv: { ...conv, padding: 'FULL' as never }, activation: 'RELU' } } },
      weights,
    );
    const noStride = encodeArtifact(
      { ...HEADER, site: { ...widenSite, convWiden: { conv: { ...conv, stride: 0 }, activation: 'RELU' } } },
      weights,
    );
    for (const bytes of [badMagic, badVersion, longer, unknownFamily, extraField, badKind, badPath, noStride]) {
      expect(
        isEsperError(
          errorOf(() => decodeArtifact(bytes)),
          ErrorCode.TEZZERET_ARTIFACT_INVALID,
        ),
      ).toBe(true);
    }
    const paths = (bytes: Uint8Array): string[] => (errorOf(() => decodeArtifact(bytes)) as PersistedStateError).issues.map((i) => i.path);
    expect(paths(unknownFamily)).toEqual(['$.family']);
    expect(paths(extraField)).toEqual(['$']);
    expect(paths(badKind)).toEqual(['$.site.kind']);
    expect([paths(badPath), paths(noStride)]).toEqual([['$.site.convWiden.conv.padding'], ['$.site.convWiden.conv.stride']]);
  });
});
