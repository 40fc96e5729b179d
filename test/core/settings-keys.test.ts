import { describe, expect, it } from 'vitest';
import { listSettings } from '../../src/core/settings-keys.js';
import { loadSettings } from '../../src/core/settings.js';

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

  it('marks exactly the signing secrets and the alert webhook URL (it often holds a token) as secret', () => {
    expect(settings.filter((entry) => entry.secret).map((entry) => entry.path)).toEqual([
      'security.leylineSecret',
      'security.leylineKeys',
      'nissa.alertWebhookUrl',
    ]);
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
