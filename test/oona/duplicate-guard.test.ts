import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { DuplicateGuard } from '../../src/oona/duplicate-guard.js';

describe('DuplicateGuard', () => {
  it('drops a second entry carrying a seen message id at the same attempt', () => {
    const guard = new DuplicateGuard(8);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 1, entryKey: 'e1' })).toBe(false);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 1, entryKey: 'e2' })).toBe(true);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 1, entryKey: 'e3' })).toBe(true);
  });

  it('passes a retry (higher attempt) and a redelivery of the same entry, then drops an older attempt', () => {
    const guard = new DuplicateGuard(8);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 1, entryKey: 'e1' })).toBe(false);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 1, entryKey: 'e1' })).toBe(false);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 2, entryKey: 'e2' })).toBe(false);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 2, entryKey: 'e3' })).toBe(true);
    expect(guard.isDuplicate({ messageId: 'm', attempt: 1, entryKey: 'e4' })).toBe(true);
  });

  it('forgets the oldest message id past its window', () => {
    const guard = new DuplicateGuard(2);
    for (const id of ['a', 'b', 'c']) guard.isDuplicate({ messageId: id, attempt: 1, entryKey: id });
    expect(guard.size).toBe(2);
    expect(guard.isDuplicate({ messageId: 'a', attempt: 1, entryKey: 'copy' })).toBe(false);
    expect(guard.isDuplicate({ messageId: 'c', attempt: 1, entryKey: 'copy' })).toBe(true);
  });

  it('refuses a window that is not an integer ≥ 1', () => {
    for (const size of [0, 1.5, Number.NaN]) {
      expect(() => new DuplicateGuard(size)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }) as Error);
    }
  });
});
