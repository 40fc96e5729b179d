import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/errors.js';
import {
  listSettings,
  loadSettings,
  redactSettings,
  redactUrl,
  REDACTED,
  SettingsError,
  type LoadSettingsOptions,
  type SettingsIssue,
} from '../../src/core/settings.js';

const SECRET = 'correct-horse-battery-staple-42';
const PASSWORD = 'p4ssw0rd-never-logged';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'esper-settings-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `content` (an object is JSON-encoded) to a fresh file and returns its path. */
function writeConfig(name: string, content: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Runs `loadSettings`, expecting it to fail, and returns the typed error. */
function loadError(options: LoadSettingsOptions): SettingsError {
  try {
    loadSettings(options);
  } catch (error) {
    expect(isEsperError(error, ErrorCode.SETTINGS_INVALID)).toBe(true);
    expect(error).toBeInstanceOf(SettingsError);
    return error as SettingsError;
  }
  throw new Error('expected loadSettings to throw');
}

/** Issues of `error` without `file`, for compact comparisons. */
function issueKeys(error: SettingsError): string[] {
  return error.issues.map((issue) => `${issue.source}:${issue.key}`);
}

describe('loadSettings defaults', () => {
  it('resolves every section from defaults when nothing is set', () => {
    const settings = loadSettings({ env: {} });
    expect(settings.core).toEqual({
      asyncWorker: {
        maxConcurrency: 4,
        maxQueueDepth: 1024,
        defaultDeadlineMs: undefined,
        shutdownTimeoutMs: 5000,
      },
      logLevel: 'info',
    });
    expect(settings.security).toEqual({
      leylineSecret: undefined,
      leylineKeys: undefined,
      freshnessWindowMs: 60_000,
      futureSkewMs: 5_000,
      nonceTtlSeconds: 300,
      nonceMaxEntries: 10_000,
    });
    expect(settings.oona).toMatchObject({
      busUrl: 'memory://',
      streamPrefix: '',
      maxAttempts: 5,
      reclaimIdleMs: 60_000,
      maxBacklog: 10_000,
      publishDeadlineMs: 5_000,
      retentionMs: 900_000,
      emergencyMaxPerMin: 120,
      kernelFreshnessWindowMs: 60_000,
      kernelNonceCacheSize: 4096,
    });
    expect(settings.storage).toEqual({
      varDir: './var',
      urzaDatabasePath: './var/urza/catalog.db',
      urzaArtifactDir: './var/urza/artifacts',
    });
    expect(settings.nissa).toMatchObject({ httpHost: '127.0.0.1', httpPort: 9100, alertsEnabled: true });
    expect(settings.tolaria.rollback.enabled).toBe(false);
    expect(settings.tamiyo.policyDir).toBe('./var/tamiyo/policies');
  });

  it('returns a deeply frozen object', () => {
    const settings = loadSettings({ env: {} });
    expect(Object.isFrozen(settings)).toBe(true);
    expect(Object.isFrozen(settings.core)).toBe(true);
    expect(Object.isFrozen(settings.core.asyncWorker)).toBe(true);
    expect(Object.isFrozen(settings.tolaria.rollback)).toBe(true);
    expect(() => {
      (settings.core.asyncWorker as { maxConcurrency: number }).maxConcurrency = 99;
    }).toThrow(TypeError);
  });

  it('derives storage paths from varDir unless they are set explicitly', () => {
    const settings = loadSettings({
      env: { ESPER_STORAGE_VAR_DIR: '/srv/esper/', ESPER_STORAGE_URZA_ARTIFACT_DIR: '/mnt/artifacts' },
    });
    expect(settings.storage).toEqual({
      varDir: '/srv/esper/',
      urzaDatabasePath: '/srv/esper/urza/catalog.db',
      urzaArtifactDir: '/mnt/artifacts',
    });
    expect(settings.tamiyo.fieldReportWalPath).toBe('/srv/esper/tamiyo/field-reports.wal');
  });
});

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

describe('loadSettings sources and precedence', () => {
  it('takes each key from overrides, then env, then the config file, then the default', () => {
    const configFile = writeConfig('precedence.json', {
      oona: { emergencyMaxPerMin: 10, kernelNonceCacheSize: 11, maxAttempts: 12 },
    });
    const settings = loadSettings({
      configFile,
      env: { ESPER_OONA_EMERGENCY_MAX_PER_MIN: '20', ESPER_OONA_KERNEL_NONCE_CACHE_SIZE: '21' },
      overrides: { oona: { emergencyMaxPerMin: 30 } },
    });
    expect(settings.oona.emergencyMaxPerMin).toBe(30);
    expect(settings.oona.kernelNonceCacheSize).toBe(21);
    expect(settings.oona.maxAttempts).toBe(12);
    expect(settings.oona.reclaimIdleMs).toBe(60_000);
  });

  it('reads the config file named by ESPER_CONFIG_FILE, unless the option names another', () => {
    const fromEnv = writeConfig('from-env.json', { nissa: { httpPort: 9201 } });
    const fromOption = writeConfig('from-option.json', { nissa: { httpPort: 9202 } });
    expect(loadSettings({ env: { ESPER_CONFIG_FILE: fromEnv } }).nissa.httpPort).toBe(9201);
    expect(loadSettings({ env: { ESPER_CONFIG_FILE: fromEnv }, configFile: fromOption }).nissa.httpPort).toBe(9202);
  });

  it('reads nested groups from the config file', () => {
    const configFile = writeConfig('nested.json', {
      core: { asyncWorker: { maxQueueDepth: 0, defaultDeadlineMs: 1500 }, logLevel: 'warn' },
      tolaria: { rollback: { enabled: true, deadlineMs: 400 } },
    });
    const settings = loadSettings({ env: {}, configFile });
    expect(settings.core.asyncWorker.maxQueueDepth).toBe(0);
    expect(settings.core.asyncWorker.defaultDeadlineMs).toBe(1500);
    expect(settings.core.logLevel).toBe('warn');
    expect(settings.tolaria.rollback).toEqual({
      enabled: true,
      fastCacheMaxMb: 32,
      deadlineMs: 400,
      snapshotSteps: 1,
    });
  });

  it('reports unknown and mistyped keys in the config file with its path', () => {
    const configFile = writeConfig('bad-keys.json', {
      core: { asyncWorker: { maxConcurency: 2, maxQueueDepth: '10' } },
      oona: 'redis://localhost',
      nissa: { httpPort: 70_000 },
      narset: {},
    });
    const error = loadError({ env: {}, configFile });
    expect(error.issues).toEqual([
      {
        source: 'file',
        file: configFile,
        key: 'core.asyncWorker.maxConcurency',
        message: 'unknown setting (did you mean maxConcurrency?)',
      },
      {
        source: 'file',
        file: configFile,
        key: 'core.asyncWorker.maxQueueDepth',
        settingPath: 'core.asyncWorker.maxQueueDepth',
        message: 'expected integer ≥ 0, got "10"',
      },
      {
        source: 'file',
        file: configFile,
        key: 'oona',
        settingPath: 'oona',
        message: 'expected an object, got "redis://localhost"',
      },
      {
        source: 'file',
        file: configFile,
        key: 'nissa.httpPort',
        settingPath: 'nissa.httpPort',
        message: 'expected integer in [0, 65535], got 70000',
      },
      { source: 'file', file: configFile, key: 'narset', message: 'unknown setting' },
    ] satisfies SettingsIssue[]);
    expect(error.message).toContain(`config file ${configFile} at nissa.httpPort: expected integer in [0, 65535], got 70000`);
  });

  it.each([
    ['not JSON', '{"nissa": {"httpPort": 9100,}}', /^is not valid JSON \(at position \d+\)$/],
    ['an array', '[1, 2]', /^must hold a JSON object$/],
    ['null', 'null', /^must hold a JSON object$/],
  ])('reports a config file that is %s', (_label, text, message) => {
    const configFile = writeConfig(`whole-${_label.replace(/\W/g, '-')}.json`, text);
    const error = loadError({ env: {}, configFile });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({ source: 'file', file: configFile, key: '' });
    expect(error.issues[0]?.message).toMatch(message);
  });

  it('reports a config file that cannot be read', () => {
    const configFile = path.join(dir, 'missing.json');
    const error = loadError({ env: { ESPER_CONFIG_FILE: configFile } });
    expect(error.issues).toEqual([{ source: 'file', file: configFile, key: '', message: 'cannot be read (ENOENT)' }]);
  });

  it('rejects an empty ESPER_CONFIG_FILE', () => {
    const error = loadError({ env: { ESPER_CONFIG_FILE: '' } });
    expect(issueKeys(error)).toEqual(['env:ESPER_CONFIG_FILE']);
  });

  it('validates overrides like any other source', () => {
    const error = loadError({
      env: {},
      overrides: {
        nissa: { httpPort: -1 },
        oona: { nope: true },
      } as unknown as LoadSettingsOptions['overrides'],
    });
    expect(error.issues).toEqual([
      {
        source: 'overrides',
        key: 'nissa.httpPort',
        settingPath: 'nissa.httpPort',
        message: 'expected integer in [0, 65535], got -1',
      },
      { source: 'overrides', key: 'oona.nope', message: 'unknown setting' },
    ]);
    expect(error.message).toContain('overrides.nissa.httpPort: expected integer in [0, 65535], got -1');
  });

  it('reports every problem of every source in one error', () => {
    const configFile = writeConfig('mixed.json', { tamiyo: { stepTimeoutMs: 0 } });
    const error = loadError({
      configFile,
      env: {
        ESPER_ASYNC_WORKER_MAX_CONCURRENCY: '0',
        ESPER_SECURITY_NONCE_TTL_SECONDS: '5m',
        ESPER_OONA_NORMAL_STREAM: 'has spaces',
        ESPER_TYPO: 'x',
      },
      overrides: { security: { futureSkewMs: -5 } },
    });
    expect(issueKeys(error)).toEqual([
      'env:ESPER_ASYNC_WORKER_MAX_CONCURRENCY',
      'env:ESPER_SECURITY_NONCE_TTL_SECONDS',
      'env:ESPER_OONA_NORMAL_STREAM',
      'env:ESPER_TYPO',
      'file:tamiyo.stepTimeoutMs',
      'overrides:security.futureSkewMs',
    ]);
    expect(error.message).toMatch(/^invalid settings \(6 problems\):\n/);
    for (const issue of error.issues) expect(error.message).toContain(issue.message);
    expect(error.details['issueCount']).toBe(6);
    expect(Object.isFrozen(error.issues)).toBe(true);
  });

  it('keeps a valid explicit value even when the same key is invalid in a lower source', () => {
    // Shadowed bad values are still reported: a typo is a bug wherever it sits.
    const error = loadError({
      env: { ESPER_NISSA_HTTP_PORT: 'eighty' },
      overrides: { nissa: { httpPort: 80 } },
    });
    expect(issueKeys(error)).toEqual(['env:ESPER_NISSA_HTTP_PORT']);
  });
});

describe('secrets and redaction', () => {
  it('reads the signing secrets from the names the security layer uses', () => {
    const settings = loadSettings({
      env: { ESPER_LEYLINE_SECRET: SECRET, ESPER_LEYLINE_KEYS: `k1:${SECRET}` },
    });
    expect(settings.security.leylineSecret).toBe(SECRET);
    expect(settings.security.leylineKeys).toBe(`k1:${SECRET}`);
  });

  it('redacts secrets and URL passwords for logging', () => {
    const settings = loadSettings({
      env: {
        ESPER_LEYLINE_SECRET: SECRET,
        ESPER_OONA_BUS_URL: `redis://esper:${PASSWORD}@10.0.0.5:6379/1`,
      },
    });
    const redacted = redactSettings(settings);
    const text = JSON.stringify(redacted);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(PASSWORD);
    expect(redacted['security']).toMatchObject({ leylineSecret: REDACTED, freshnessWindowMs: 60_000 });
    expect((redacted['security'] as Record<string, unknown>)['leylineKeys']).toBeUndefined();
    expect((redacted['oona'] as Record<string, unknown>)['busUrl']).toBe(`redis://esper:${REDACTED}@10.0.0.5:6379/1`);
    expect(redacted['core']).toEqual(JSON.parse(JSON.stringify(settings.core)) as Record<string, unknown>);
  });

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

  it('does not echo file text around a JSON syntax error', () => {
    const configFile = writeConfig('secret-syntax.json', `{"security": {"leylineSecret": ${SECRET}}}`);
    const error = loadError({ env: {}, configFile });
    expect(error.message).not.toContain(SECRET.slice(0, 8));
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

describe('listSettings', () => {
  const settings = listSettings();

  it('gives every key a distinct ESPER_ variable', () => {
    const names = settings.map((entry) => entry.envVar);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^ESPER_[A-Z0-9_]+$/);
  });

  it('derives variable names from key paths, except the documented exceptions', () => {
    const exceptions = new Map<string, string>([
      ['security.leylineSecret', 'ESPER_LEYLINE_SECRET'],
      ['security.leylineKeys', 'ESPER_LEYLINE_KEYS'],
      ['core.asyncWorker.maxConcurrency', 'ESPER_ASYNC_WORKER_MAX_CONCURRENCY'],
      ['core.asyncWorker.maxQueueDepth', 'ESPER_ASYNC_WORKER_MAX_QUEUE_DEPTH'],
      ['core.asyncWorker.defaultDeadlineMs', 'ESPER_ASYNC_WORKER_DEFAULT_DEADLINE_MS'],
      ['core.asyncWorker.shutdownTimeoutMs', 'ESPER_ASYNC_WORKER_SHUTDOWN_TIMEOUT_MS'],
    ]);
    for (const entry of settings) {
      const byRule = `ESPER_${entry.path
        .split('.')
        .map((segment) => segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
        .join('_')}`;
      expect(entry.envVar, entry.path).toBe(exceptions.get(entry.path) ?? byRule);
    }
    expect(settings.find((entry) => entry.path === 'oona.emergencyMaxPerMin')?.envVar).toBe('ESPER_OONA_EMERGENCY_MAX_PER_MIN');
  });

  it('marks exactly the signing secrets as secret', () => {
    expect(settings.filter((entry) => entry.secret).map((entry) => entry.path)).toEqual(['security.leylineSecret', 'security.leylineKeys']);
  });

  it('covers every key of the resolved settings', () => {
    const resolved = loadSettings({ env: {} });
    const paths: string[] = [];
    const walk = (node: object, prefix: string): void => {
      for (const [key, value] of Object.entries(node)) {
        const dotted = prefix === '' ? key : `${prefix}.${key}`;
        if (typeof value === 'object' && value !== null) walk(value, dotted);
        else paths.push(dotted);
      }
    };
    walk(resolved, '');
    expect(paths).toEqual(settings.map((entry) => entry.path));
  });
});
