import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { idOrUndefined, toId } from '../../src/tamiyo/decision.js';

describe('decision ids', () => {
  it('toId accepts a non-blank id unchanged', () => {
    expect(toId('hidden1#3', 'seed id')).toBe('hidden1#3');
  });

  it.each(['', ' ', '\t\n'])('toId refuses the blank id %j with INVALID_ARGUMENT naming the field', (value) => {
    let error: unknown;
    try {
      toId(value, 'seed id');
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as { details?: Record<string, unknown> }).details?.['field']).toBe('seed id');
  });

  it('idOrUndefined maps a blank id to undefined', () => {
    expect(idOrUndefined('  ')).toBeUndefined();
    expect(idOrUndefined('BP001')).toBe('BP001');
  });
});
