/**
 * Cross-field rules: combinations of individually valid settings that would fail later, at
 * the first command, prefetch or key-ring build. `loadSettings` checks them at start.
 */
import { MAX_TIMER_MS } from './options.js';
import type { SettingsIssue } from './settings-error.js';
import type { EsperSettings } from './settings-schema.js';

/** One rule over several keys. */
export interface SettingsRule {
  /** The dotted keys the rule combines; it is checked only when each of them is valid. */
  readonly paths: readonly string[];
  /** The rule in one sentence (operator runbook). */
  readonly description: string;
  /** What is wrong with `settings`, or undefined when they keep the rule. */
  check(settings: EsperSettings): string | undefined;
}

function isSet(value: string | undefined): boolean {
  return value !== undefined && value !== '';
}

/** Every cross-field rule, in the order they are checked. */
export const SETTINGS_RULES: readonly SettingsRule[] = Object.freeze([
  {
    paths: ['security.nonceTtlSeconds', 'security.freshnessWindowMs', 'security.futureSkewMs'],
    description:
      'The nonce TTL covers the time a signed message stays acceptable (freshness window + future skew); ' +
      'otherwise a replay after the TTL would pass, and the verifiers refuse to start.',
    check({ security }) {
      const acceptableMs = security.freshnessWindowMs + security.futureSkewMs;
      if (security.nonceTtlSeconds * 1000 >= acceptableMs) return undefined;
      return (
        `nonce TTL ${security.nonceTtlSeconds} s is shorter than freshnessWindowMs + futureSkewMs (${acceptableMs} ms): ` +
        `raise nonceTtlSeconds to at least ${Math.ceil(acceptableMs / 1000)}`
      );
    },
  },
  {
    paths: ['security.leylineSecret', 'security.leylineKeys'],
    description: 'At most one of the signing secret and the key ring is set.',
    check({ security }) {
      if (!isSet(security.leylineSecret) || !isSet(security.leylineKeys)) return undefined;
      return 'set either ESPER_LEYLINE_SECRET or ESPER_LEYLINE_KEYS, not both';
    },
  },
  {
    paths: ['kasmina.prefetchTimeoutFactor', 'kasmina.kernelLatencyBudgetMs'],
    description: `The prefetch deadline (timeout factor × kernel latency budget) fits a timer (≤ ${MAX_TIMER_MS} ms).`,
    check({ kasmina }) {
      const deadlineMs = kasmina.prefetchTimeoutFactor * kasmina.kernelLatencyBudgetMs;
      if (deadlineMs <= MAX_TIMER_MS) return undefined;
      return `prefetch deadline prefetchTimeoutFactor × kernelLatencyBudgetMs = ${deadlineMs} ms exceeds the timer limit of ${MAX_TIMER_MS} ms`;
    },
  },
]);

/**
 * The issues of every rule `settings` break, skipping rules over a key at or below one of
 * `invalidPaths` (already reported; its value here is only a stand-in).
 */
export function checkSettingsRules(settings: EsperSettings, invalidPaths: readonly string[]): SettingsIssue[] {
  const issues: SettingsIssue[] = [];
  const invalid = (path: string): boolean => invalidPaths.some((bad) => path === bad || path.startsWith(`${bad}.`));
  for (const rule of SETTINGS_RULES) {
    if (rule.paths.some(invalid)) continue;
    const message = rule.check(settings);
    if (message !== undefined) issues.push({ source: 'rule', key: rule.paths.join(' + '), settingPath: rule.paths[0] as string, message });
  }
  return issues;
}

/** Every cross-field rule in words, for the operator runbook. */
export function listSettingsRules(): readonly Pick<SettingsRule, 'paths' | 'description'>[] {
  return SETTINGS_RULES.map(({ paths, description }) => ({ paths, description }));
}
