import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadSettings } from '../../src/core/settings.js';
import { loadError, SECRET } from './settings-fixtures.js';

describe('loadSettings environment parsing', () => {
  it('reads each key from the variable its path names', () => {
    const settings = loadSettings({
      env: {
        ESPER_OONA_EMERGENCY_MAX_PER_MIN: '30',
        ESPER_TOLARIA_ROLLBACK_FAST_CACHE_MAX_MB: '64',
        ESPER_TOLARIA_EMERGENCY_L4_FAILED_EPOCHS: '5',
        ESPER_NISSA_COVERAGE_ALERT_THRESHOLD: '0.25',
        ESPER_ASYNC_WORKER_MAX_CONCURRENCY: '8',
        ESPER_OONA_BUS_URL: 'redis://127.0.0.1:6379/2',
      },
    });
    expect(settings.oona.emergencyMaxPerMin).toBe(30);
    expect(settings.tolaria.rollback.fastCacheMaxMb).toBe(64);
    expect(settings.tolaria.emergency.l4FailedEpochs).toBe(5);
    expect(settings.nissa.coverageAlertThreshold).toBe(0.25);
    expect(settings.core.asyncWorker.maxConcurrency).toBe(8);
    expect(settings.oona.busUrl).toBe('redis://127.0.0.1:6379/2');
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['On', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['OFF', false],
  ])('accepts boolean spelling %j', (raw, expected) => {
    const settings = loadSettings({ env: { ESPER_TOLARIA_ROLLBACK_ENABLED: raw } });
    expect(settings.tolaria.rollback.enabled).toBe(expected);
  });

  it.each(['', 'maybe', 'tru', '2', ' true'])('rejects boolean spelling %j', (raw) => {
    const error = loadError({ env: { ESPER_TOLARIA_ROLLBACK_ENABLED: raw } });
    expect(error.issues).toEqual([
      {
        source: 'env',
        key: 'ESPER_TOLARIA_ROLLBACK_ENABLED',
        settingPath: 'tolaria.rollback.enabled',
        message: `expected boolean (true/false, 1/0, yes/no, on/off), got ${JSON.stringify(raw)}`,
      },
    ]);
  });

  it.each(['12abc', '', 'NaN', ' 12', '1.5', '1e3', '0x10', 'Infinity', '9007199254740993'])('rejects integer text %j', (raw) => {
    const error = loadError({ env: { ESPER_OONA_KERNEL_NONCE_CACHE_SIZE: raw } });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.message).toBe(`expected integer ≥ 1, got ${JSON.stringify(raw)}`);
  });

  it.each([
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1e-1', 0.1],
    ['1', 1],
  ])('accepts decimal text %j', (raw, expected) => {
    const settings = loadSettings({ env: { ESPER_NISSA_BSDS_ELEVATED_RISK_THRESHOLD: raw } });
    expect(settings.nissa.bsdsElevatedRiskThreshold).toBe(expected);
  });

  it.each(['12abc', '', 'NaN', 'Infinity', '1.5', '-0.1'])('rejects ratio text %j', (raw) => {
    const error = loadError({ env: { ESPER_NISSA_BSDS_ELEVATED_RISK_THRESHOLD: raw } });
    expect(error.issues[0]?.message).toBe(`expected number in [0, 1], got ${JSON.stringify(raw)}`);
  });

  it('names the bound a numeric value breaks', () => {
    const error = loadError({ env: { ESPER_ASYNC_WORKER_MAX_CONCURRENCY: '0' } });
    expect(error.message).toContain('ESPER_ASYNC_WORKER_MAX_CONCURRENCY: expected integer ≥ 1, got "0"');
  });

  it('matches enum values case-insensitively and returns the canonical spelling', () => {
    expect(loadSettings({ env: { ESPER_CORE_LOG_LEVEL: 'DEBUG' } }).core.logLevel).toBe('debug');
    const error = loadError({ env: { ESPER_CORE_LOG_LEVEL: 'verbose' } });
    expect(error.issues[0]?.message).toMatch(/^expected one of "fatal", .*"silent", got "verbose"$/);
  });

  it('accepts only memory and redis bus URLs', () => {
    expect(loadSettings({ env: { ESPER_OONA_BUS_URL: 'rediss://cache.internal:6380/0' } }).oona.busUrl).toBe(
      'rediss://cache.internal:6380/0',
    );
    const error = loadError({ env: { ESPER_OONA_BUS_URL: 'http://127.0.0.1:6379' } });
    expect(error.issues[0]?.key).toBe('ESPER_OONA_BUS_URL');
  });

  it('reports an unknown ESPER_ variable as a likely typo, with a suggestion', () => {
    const error = loadError({ env: { ESPER_OONA_EMERGENCY_MAX_PER_MINUTE: '30', ESPER_ZZZ: '1' } });
    expect(error.issues).toEqual([
      {
        source: 'env',
        key: 'ESPER_OONA_EMERGENCY_MAX_PER_MINUTE',
        message: 'unknown setting (did you mean ESPER_OONA_EMERGENCY_MAX_PER_MIN?)',
      },
      { source: 'env', key: 'ESPER_ZZZ', message: 'unknown setting' },
    ]);
  });

  it('ignores unknown ESPER_ variables when asked, and never looks at other variables', () => {
    const settings = loadSettings({
      env: { ESPER_ZZZ: '1', PATH: '/usr/bin', esper_lower: 'x', REDIS_URL: 'redis://x' },
      unknownEnv: 'ignore',
    });
    expect(settings.oona.busUrl).toBe('memory://');
    expect(() => loadSettings({ env: { PATH: '/usr/bin', REDIS_URL: 'redis://x' } })).not.toThrow();
  });

  it('reads the signing secrets from the names the security layer uses', () => {
    expect(loadSettings({ env: { ESPER_LEYLINE_SECRET: SECRET } }).security.leylineSecret).toBe(SECRET);
    expect(loadSettings({ env: { ESPER_LEYLINE_KEYS: `k1:${SECRET}` } }).security.leylineKeys).toBe(`k1:${SECRET}`);
  });

  describe('with the process environment', () => {
    afterEach(() => {
      vi.unstubAllEnvs();
    });

    it('reads process.env when no env is given', () => {
      vi.stubEnv('ESPER_NISSA_HTTP_PORT', '9311');
      expect(loadSettings({ unknownEnv: 'ignore' }).nissa.httpPort).toBe(9311);
    });
  });
});
