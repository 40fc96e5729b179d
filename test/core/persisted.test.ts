import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import { parsePersisted, parsePersistedJson, PersistedStateError } from '../../src/core/persisted.js';
import { thrownBy } from '../support/thrown.js';

const Snapshot = z.strictObject({
  v: z.literal(1),
  seeds: z.array(z.strictObject({ id: z.string().min(1), stage: z.enum(['DORMANT', 'TRAINING']), alpha: z.number().min(0).max(1) })),
  'odd key': z.number().optional(),
});

const source = { code: ErrorCode.TAMIYO_FIELD_REPORT_INVALID, what: 'field-report snapshot /var/s.json', details: { path: '/var/s.json' } };

function failure(fn: () => unknown): PersistedStateError {
  const error = thrownBy(fn, ErrorCode.TAMIYO_FIELD_REPORT_INVALID);
  expect(error).toBeInstanceOf(PersistedStateError);
  return error as PersistedStateError;
}

describe('parsePersisted', () => {
  it('returns the parsed value when it fits the schema', () => {
    const value = { v: 1, seeds: [{ id: 's1', stage: 'DORMANT', alpha: 0 }] };
    expect(parsePersisted(Snapshot, value, source)).toEqual(value);
  });

  it('throws one error with the owner’s code naming what was read and every bad path', () => {
    const error = failure(() =>
      parsePersisted(
        Snapshot,
        {
          v: 2,
          seeds: [
            { id: 's1', stage: 'DORMANT', alpha: 0 },
            { id: '', stage: 'GONE', alpha: 3 },
          ],
          'odd key': 'x',
          extra: true,
        },
        source,
      ),
    );
    expect(isEsperError(error, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
    expect(error.issues.map((issue) => issue.path)).toEqual([
      '$.v',
      '$.seeds[1].id',
      '$.seeds[1].stage',
      '$.seeds[1].alpha',
      '$["odd key"]',
      '$',
    ]);
    expect(error.message.startsWith('field-report snapshot /var/s.json is invalid: $.v: ')).toBe(true);
    expect(error.details).toMatchObject({ path: '/var/s.json', issueCount: 6 });
    expect(Object.isFrozen(error.issues)).toBe(true);
  });

  it.each([null, 42, 'text', []])('refuses a whole value of the wrong kind (%o) at path $', (value) => {
    expect(failure(() => parsePersisted(Snapshot, value, source)).issues[0]?.path).toBe('$');
  });
});

describe('parsePersistedJson', () => {
  it('parses JSON text and bytes', () => {
    const text = '{"v":1,"seeds":[]}';
    expect(parsePersistedJson(Snapshot, text, source)).toEqual({ v: 1, seeds: [] });
    expect(parsePersistedJson(Snapshot, new TextEncoder().encode(text), source)).toEqual({ v: 1, seeds: [] });
  });

  it('reports a syntax error at $ with its line and column, never quoting the text', () => {
    const error = failure(() => parsePersistedJson(Snapshot, '{"v": 1,\n "seeds": [hunter2]}', source));
    expect(error.issues).toEqual([{ path: '$', message: 'not valid JSON (line 2, column 12: invalid symbol)' }]);
    expect(error.message).not.toContain('hunter2');
  });

  it('reports bytes that are not UTF-8', () => {
    const error = failure(() => parsePersistedJson(Snapshot, Uint8Array.from([0x7b, 0xff, 0x7d]), source));
    expect(error.issues).toEqual([{ path: '$', message: 'not valid JSON (invalid UTF-8)' }]);
  });

  it('turns any truncation or byte flip of a valid snapshot into a typed error or a valid value (property)', () => {
    const bytes = new TextEncoder().encode(JSON.stringify({ v: 1, seeds: [{ id: 'seed-1', stage: 'TRAINING', alpha: 0.5 }] }));
    fc.assert(
      fc.property(fc.nat(bytes.length), fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (cut, at, flip) => {
        for (const damaged of [bytes.subarray(0, cut), Uint8Array.from(bytes, (b, i) => (i === at ? b ^ flip : b))]) {
          try {
            const value = parsePersistedJson(Snapshot, damaged, source);
            expect(Snapshot.safeParse(value).success).toBe(true);
          } catch (error) {
            expect(isEsperError(error, ErrorCode.TAMIYO_FIELD_REPORT_INVALID)).toBe(true);
          }
        }
      }),
    );
  });
});
