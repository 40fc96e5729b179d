import { describe, expect, it } from 'vitest';
import { redactUrl, REDACTED } from '../../src/core/settings-setting.js';
import { issueKeys, loadError, PASSWORD, SECRET, useConfigDir, writeConfig } from './settings-fixtures.js';

useConfigDir();

describe('settings leaves', () => {
  it('never shows a secret in an error message', () => {
    const configFile = writeConfig('secret-in-file.json', { security: { leylineKeys: [SECRET] } });
    const error = loadError({
      configFile,
      env: {
        ESPER_LEYLINE_SECRET: '',
        ESPER_LEYLINE_SECRETT: SECRET,
        ESPER_OONA_BUS_URL: `redis://:${PASSWORD}@10.0.0.5:notaport/0`,
      },
    });
    expect(issueKeys(error)).toEqual([
      'env:ESPER_LEYLINE_SECRET',
      'env:ESPER_OONA_BUS_URL',
      'env:ESPER_LEYLINE_SECRETT',
      'file:security.leylineKeys',
    ]);
    const everything = `${error.message}\n${JSON.stringify(error.issues)}\n${JSON.stringify(error.details)}`;
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(PASSWORD);
    expect(error.issues[0]?.message).toBe(`expected non-empty string, got ${REDACTED}`);
    expect(error.issues[2]?.message).toBe('unknown setting (did you mean ESPER_LEYLINE_SECRET?)');
  });

  it.each([
    ['memory://', 'memory://'],
    ['redis://127.0.0.1:6379/0', 'redis://127.0.0.1:6379/0'],
    ['redis://user@host:6379', 'redis://user@host:6379'],
    [`redis://:${PASSWORD}@host:6379/0`, `redis://:${REDACTED}@host:6379/0`],
    [`rediss://u:${PASSWORD}@host/0?tls=1`, `rediss://u:${REDACTED}@host/0?tls=1`],
    [`redis://u:${PASSWORD}@host:bad`, `redis://${REDACTED}@host:bad`],
  ])('redactUrl(%j) hides only the password', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });
});
