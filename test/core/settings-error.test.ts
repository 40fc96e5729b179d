import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.js';
import { formatSettingsIssue, SettingsError } from '../../src/core/settings-error.js';

describe('SettingsError', () => {
  it('lists every issue, one line each, by where it was found', () => {
    const error = new SettingsError([
      { source: 'env', key: 'ESPER_X', message: 'unknown setting' },
      { source: 'file', key: '', file: '/etc/esper.json', message: 'does not exist' },
      { source: 'file', key: 'nissa.httpPort', file: '/etc/esper.json', message: 'expected integer' },
      { source: 'overrides', key: 'oona.maxAttempts', message: 'expected integer ≥ 1, got 0' },
      { source: 'rule', key: 'a.b + a.c', message: 'a.b must cover a.c' },
    ]);
    expect(error.code).toBe(ErrorCode.SETTINGS_INVALID);
    expect(error.message.split('\n')).toEqual([
      'invalid settings (5 problems):',
      '  - ESPER_X: unknown setting',
      '  - config file /etc/esper.json: does not exist',
      '  - config file /etc/esper.json at nissa.httpPort: expected integer',
      '  - overrides.oona.maxAttempts: expected integer ≥ 1, got 0',
      '  - a.b + a.c: a.b must cover a.c',
    ]);
    expect(error.details).toEqual({ issueCount: 5, keys: 'ESPER_X,/etc/esper.json,nissa.httpPort,oona.maxAttempts,a.b + a.c' });
    expect(formatSettingsIssue(error.issues[4]!)).toBe('a.b + a.c: a.b must cover a.c');
  });
});
