import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type EsperError } from '../../src/core/errors.js';
import { RECORD_LOG_DEFAULTS, resolveRecordLogOptions, type RecordLogOptions } from '../../src/core/record-log-options.js';

describe('resolveRecordLogOptions', () => {
  it('resolves defaults', () => {
    expect(resolveRecordLogOptions()).toEqual(RECORD_LOG_DEFAULTS);
    expect(RECORD_LOG_DEFAULTS).toEqual({
      fsync: 'per-record',
      groupCommitMaxDelayMs: 5,
      groupCommitMaxRecords: 256,
      maxRecordBytes: 16 * 1024 * 1024,
    });
  });

  it('names the bad field of invalid options', () => {
    const cases: [RecordLogOptions, string][] = [
      [{ fsync: 'sometimes' as 'group' }, 'fsync'],
      [{ groupCommitMaxDelayMs: -1 }, 'groupCommitMaxDelayMs'],
      [{ groupCommitMaxRecords: 0 }, 'groupCommitMaxRecords'],
      [{ maxRecordBytes: 2 ** 32 }, 'maxRecordBytes'],
    ];
    for (const [options, field] of cases) {
      try {
        resolveRecordLogOptions(options);
        expect.unreachable(field);
      } catch (error) {
        expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
        expect((error as EsperError).details.field).toBe(field);
      }
    }
  });
});
