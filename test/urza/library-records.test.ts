import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { BlueprintDescriptorSchema } from '../../src/leyline/index.js';
import { validateSaveInput, type UrzaSaveInput } from '../../src/urza/library-records.js';

const good: UrzaSaveInput = {
  descriptor: create(BlueprintDescriptorSchema, { blueprintId: 'BP001' }),
  siteKey: 'dense:8',
  artifact: new Uint8Array([1, 2, 3]),
  guardDigest: 'g',
  compileMs: 1,
  prewarm: { p50Ms: 1, p95Ms: 2 },
};

describe('validateSaveInput', () => {
  it('accepts a complete save', () => {
    expect(() => validateSaveInput(good)).not.toThrow();
  });

  it.each([
    ['descriptor.blueprintId', { descriptor: create(BlueprintDescriptorSchema, { blueprintId: '' }) }],
    ['siteKey', { siteKey: '' }],
    ['siteKey', { siteKey: 'a\u0000b' }],
    ['artifact', { artifact: new Uint8Array() }],
    ['compileMs', { compileMs: Number.NaN }],
    ['prewarm.p95Ms', { prewarm: { p50Ms: 1, p95Ms: -1 } }],
  ])('names %s when it is invalid', (field, change) => {
    expect(() => validateSaveInput({ ...good, ...change })).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, details: expect.objectContaining({ field }) }),
    );
  });
});
