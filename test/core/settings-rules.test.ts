import { describe, expect, it } from 'vitest';
import { MAX_TIMER_MS } from '../../src/core/options.js';
import { listSettingsRules, SETTINGS_RULES } from '../../src/core/settings-rules.js';
import { LEAVES } from '../../src/core/settings-keys.js';
import { loadSettings } from '../../src/core/settings.js';
import { issueKeys, loadError, SECRET } from './settings-fixtures.js';

const NONCE_RULE = 'security.nonceTtlSeconds + security.freshnessWindowMs + security.futureSkewMs';
const SECRETS_RULE = 'security.leylineSecret + security.leylineKeys';
const PREFETCH_RULE = 'kasmina.prefetchTimeoutFactor + kasmina.kernelLatencyBudgetMs';

describe('cross-field settings rules', () => {
  it('hold for the defaults', () => {
    expect(() => loadSettings({ env: {} })).not.toThrow();
  });

  it('refuses a freshness window the nonce TTL does not cover, at load time', () => {
    const error = loadError({ env: { ESPER_SECURITY_FRESHNESS_WINDOW_MS: '600000' } });
    expect(error.issues).toEqual([
      {
        source: 'rule',
        key: NONCE_RULE,
        settingPath: 'security.nonceTtlSeconds',
        message: 'nonce TTL 300 s is shorter than freshnessWindowMs + futureSkewMs (605000 ms): raise nonceTtlSeconds to at least 605',
      },
    ]);
    expect(error.message).toContain(`${NONCE_RULE}: nonce TTL 300 s`);
  });

  it('counts the future skew in the time a message stays acceptable', () => {
    expect(issueKeys(loadError({ env: { ESPER_SECURITY_NONCE_TTL_SECONDS: '60' } }))).toEqual([`rule:${NONCE_RULE}`]);
    expect(loadSettings({ env: { ESPER_SECURITY_NONCE_TTL_SECONDS: '65' } }).security.nonceTtlSeconds).toBe(65);
  });

  it('refuses both signing secrets at once without showing either', () => {
    const error = loadError({ env: { ESPER_LEYLINE_SECRET: SECRET, ESPER_LEYLINE_KEYS: `k1:${SECRET}` } });
    expect(issueKeys(error)).toEqual([`rule:${SECRETS_RULE}`]);
    expect(`${error.message}${JSON.stringify(error.issues)}${JSON.stringify(error.details)}`).not.toContain(SECRET);
  });

  it('refuses a prefetch deadline no timer can hold', () => {
    const error = loadError({ env: { ESPER_KASMINA_KERNEL_LATENCY_BUDGET_MS: String(MAX_TIMER_MS) } });
    expect(issueKeys(error)).toEqual([`rule:${PREFETCH_RULE}`]);
  });

  it('refuses worker deadlines over the timer limit key by key', () => {
    const error = loadError({
      env: {
        ESPER_TOLARIA_TAMIYO_TIMEOUT_MS: String(MAX_TIMER_MS + 1),
        ESPER_TOLARIA_KASMINA_TIMEOUT_MS: String(MAX_TIMER_MS + 1),
        ESPER_TOLARIA_ROLLBACK_DEADLINE_MS: String(MAX_TIMER_MS + 1),
      },
    });
    expect(issueKeys(error)).toEqual([
      'env:ESPER_TOLARIA_TAMIYO_TIMEOUT_MS',
      'env:ESPER_TOLARIA_KASMINA_TIMEOUT_MS',
      'env:ESPER_TOLARIA_ROLLBACK_DEADLINE_MS',
    ]);
  });

  it('reports rule breaches with every other problem, in one error, after them', () => {
    const error = loadError({
      env: { ESPER_NISSA_HTTP_PORT: 'eighty', ESPER_SECURITY_NONCE_TTL_SECONDS: '10' },
      overrides: { kasmina: { kernelLatencyBudgetMs: MAX_TIMER_MS } },
    });
    expect(issueKeys(error)).toEqual(['env:ESPER_NISSA_HTTP_PORT', `rule:${NONCE_RULE}`, `rule:${PREFETCH_RULE}`]);
  });

  it('skips a rule over a key that is itself invalid, rather than judging a stand-in', () => {
    const error = loadError({ env: { ESPER_SECURITY_NONCE_TTL_SECONDS: '0', ESPER_SECURITY_FRESHNESS_WINDOW_MS: '600000' } });
    expect(issueKeys(error)).toEqual(['env:ESPER_SECURITY_NONCE_TTL_SECONDS']);
  });

  it('skips every rule when the config file could not be read', () => {
    const error = loadError({ env: { ESPER_SECURITY_NONCE_TTL_SECONDS: '10' }, configFile: '/nonexistent/esper.json' });
    expect(issueKeys(error)).toEqual(['file:']);
  });

  it('name only real keys, and list each for the runbook', () => {
    const known = new Set(LEAVES.map((leaf) => leaf.dotted));
    for (const rule of SETTINGS_RULES) for (const path of rule.paths) expect(known, path).toContain(path);
    expect(listSettingsRules().map((rule) => rule.paths.join(' + '))).toEqual([NONCE_RULE, SECRETS_RULE, PREFETCH_RULE]);
  });
});
