import { describe, expect, it } from 'vitest';
import { loadSettings, type LoadSettingsOptions } from '../../src/core/settings.js';
import { issueKeys, loadError, useConfigDir, writeConfig } from './settings-fixtures.js';

useConfigDir();

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
      latencyBudgets: 'enforce',
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
