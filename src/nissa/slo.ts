/**
 * Service-level objectives with multi-window burn rates.
 *
 * Each SLO counts good and bad events; its error budget is 1 − target, and its burn rate
 * over a window is (violations / total) / (1 − target): 1 spends the budget exactly over the
 * SLO period, 14.4 spends a 30-day budget in about two days. An SLO is *burning* when both
 * the short and the long window burn at or above the threshold (the multi-window rule: the
 * long window proves it matters, the short one that it is still happening).
 *
 * Departure from prototype spec §4.6: there, "burn rate" was violations / total over a 720 h
 * window, compared with 0.4. The prototype's inputs remain: telemetry metric pairs
 * `slo.<key>_objective` / `slo.<key>_actual` in one packet (good iff actual ≤ objective),
 * now scored against a target like every other SLO.
 *
 * Counts are kept in time buckets (1/30 of the short window), so memory per SLO is bounded
 * whatever the event rate and windows are exact to one bucket.
 */
import { optionChecks, systemClock, type Clock, type EsperSettings } from '../core/index.js';

/** The SLOs Nissa defines itself (keys in `/metrics/summary`). */
export const SloKey = {
  /** Tamiyo decisions within the step budget (`tamiyo.stepTimeoutMs`). */
  DECISION_LATENCY: 'tamiyo_decision_latency',
  /** Commands accepted by their receiver (a rejection is a violation). */
  COMMAND_ACCEPTANCE: 'command_acceptance',
  /** Bus messages handled within the lag budget of their publication. */
  BUS_LAG: 'bus_lag',
} as const;

/** One SLO. */
export interface SloDefinition {
  readonly key: string;
  readonly description: string;
  /** Fraction of events that must be good, in (0, 1). */
  readonly target: number;
  /** For {@link SloTracker.recordValue}: a value ≤ this is good. */
  readonly threshold?: number;
  /** Unit of `threshold` ("ms"). */
  readonly unit?: string;
}

/** Inputs of {@link defaultSlos}. */
export interface DefaultSloInputs {
  /** @default 5 (the default `tamiyo.stepTimeoutMs`) */
  readonly decisionLatencyBudgetMs?: number;
  /** @default 1000 */
  readonly busLagBudgetMs?: number;
  /** @default 0.99 */
  readonly target?: number;
}

/** The three SLOs a user of a run cares about. */
export function defaultSlos(inputs: DefaultSloInputs = {}): SloDefinition[] {
  const target = inputs.target ?? 0.99;
  return [
    {
      key: SloKey.DECISION_LATENCY,
      description: 'Tamiyo decisions within the step budget',
      target,
      threshold: inputs.decisionLatencyBudgetMs ?? 5,
      unit: 'ms',
    },
    { key: SloKey.COMMAND_ACCEPTANCE, description: 'Commands accepted by their receiver', target },
    {
      key: SloKey.BUS_LAG,
      description: 'Bus messages handled within the lag budget',
      target,
      threshold: inputs.busLagBudgetMs ?? 1_000,
      unit: 'ms',
    },
  ];
}

/** {@link defaultSlos} from the settings: `tamiyo.stepTimeoutMs`, `nissa.sloBusLagBudgetMs`, `nissa.sloTarget`. */
export function slosFromSettings(settings: {
  readonly tamiyo: Pick<EsperSettings['tamiyo'], 'stepTimeoutMs'>;
  readonly nissa: Pick<EsperSettings['nissa'], 'sloBusLagBudgetMs' | 'sloTarget'>;
}): SloDefinition[] {
  return defaultSlos({
    decisionLatencyBudgetMs: settings.tamiyo.stepTimeoutMs,
    busLagBudgetMs: settings.nissa.sloBusLagBudgetMs,
    target: settings.nissa.sloTarget,
  });
}

/** Options of {@link SloTracker}. */
export interface SloTrackerOptions {
  /** @default defaultSlos() */
  readonly slos?: readonly SloDefinition[];
  /** @default 300000 (5 min) */
  readonly shortWindowMs?: number;
  /** @default 3600000 (1 h) */
  readonly longWindowMs?: number;
  /** Burn rate at or above which, in both windows, an SLO is burning. @default 14.4 */
  readonly burnRateThreshold?: number;
  /** Target of SLOs learned from `slo.<key>_objective/_actual` pairs. @default 0.99 */
  readonly learnedTarget?: number;
  /** Cap on SLO keys (learned keys past it are ignored and counted). @default 64 */
  readonly maxKeys?: number;
  /** @default systemClock (wall time) */
  readonly clock?: Clock;
}

/** Counts over one window. */
export interface SloWindowStatus {
  readonly windowMs: number;
  readonly total: number;
  readonly violations: number;
  /** (violations / total) / (1 − target); 0 with no events. */
  readonly burnRate: number;
}

/** One SLO's state, as `/metrics/summary` shows it. */
export interface SloStatus {
  readonly description: string;
  readonly target: number;
  /** 1 − target. */
  readonly errorBudget: number;
  /** Events in the long window. */
  readonly total: number;
  /** Violations in the long window. */
  readonly violations: number;
  /** Burn rate over the long window. */
  readonly burnRate: number;
  /** Share of the long window's error budget left: 1 − burnRate, floored at 0. */
  readonly budgetRemaining: number;
  readonly short: SloWindowStatus;
  readonly long: SloWindowStatus;
  /** Both windows at or above the burn-rate threshold. */
  readonly burning: boolean;
  /** Counts since the tracker started. */
  readonly lifetime: { readonly total: number; readonly violations: number };
}

/** Counters of a {@link SloTracker}. */
export interface SloTrackerStats {
  /** Events for unknown keys or for learned keys past `maxKeys`. */
  readonly ignoredEvents: number;
  /** Events older than the long window when recorded. */
  readonly staleEvents: number;
}

interface Series {
  readonly slo: SloDefinition;
  /** bucket index → counts. */
  readonly buckets: Map<number, { total: number; violations: number }>;
  lifetimeTotal: number;
  lifetimeViolations: number;
  latestMs: number;
}

const OBJECTIVE_SUFFIX = '_objective';
const ACTUAL_SUFFIX = '_actual';
const SLO_PREFIX = 'slo.';

/** Tracks SLO events and their burn rates; see the module comment. */
export class SloTracker {
  readonly #series = new Map<string, Series>();
  readonly #shortWindowMs: number;
  readonly #longWindowMs: number;
  readonly #bucketMs: number;
  readonly #burnRateThreshold: number;
  readonly #learnedTarget: number;
  readonly #maxKeys: number;
  readonly #clock: Clock;
  #stats = { ignoredEvents: 0, staleEvents: 0 };

  constructor(options: SloTrackerOptions = {}) {
    const check = optionChecks('SloTrackerOptions');
    this.#shortWindowMs = check.integer('shortWindowMs', options.shortWindowMs ?? 300_000, { min: 30 });
    this.#longWindowMs = check.integer('longWindowMs', options.longWindowMs ?? 3_600_000, { min: this.#shortWindowMs });
    this.#bucketMs = Math.max(1, Math.floor(this.#shortWindowMs / 30));
    this.#burnRateThreshold = check.positive('burnRateThreshold', options.burnRateThreshold ?? 14.4);
    this.#learnedTarget = check.number('learnedTarget', options.learnedTarget ?? 0.99, { greaterThan: 0, max: 0.999_999 });
    this.#maxKeys = check.integer('maxKeys', options.maxKeys ?? 64, { min: 1 });
    this.#clock = options.clock ?? systemClock;
    for (const slo of options.slos ?? defaultSlos()) {
      check.nonEmptyString('slos[].key', slo.key);
      check.number(`slos[${slo.key}].target`, slo.target, { greaterThan: 0, max: 0.999_999 });
      if (this.#series.has(slo.key)) check.fail('slos', 'SLOs with distinct keys', slo.key);
      this.#series.set(slo.key, { slo, buckets: new Map(), lifetimeTotal: 0, lifetimeViolations: 0, latestMs: -Infinity });
    }
    if (this.#series.size > this.#maxKeys) check.fail('maxKeys', `at least the ${this.#series.size} defined SLOs`, this.#maxKeys);
  }

  /** Records one event of SLO `key`; false if the key is unknown or the event too old. */
  record(key: string, ok: boolean, atMs: number = this.#clock.wallMs()): boolean {
    const series = this.#series.get(key);
    if (series === undefined) {
      this.#stats.ignoredEvents += 1;
      return false;
    }
    return this.#add(series, ok, atMs);
  }

  /** Records a measured value of a threshold SLO (good iff value ≤ its threshold). */
  recordValue(key: string, value: number, atMs?: number): boolean {
    const threshold = this.#series.get(key)?.slo.threshold;
    if (threshold === undefined) {
      this.#stats.ignoredEvents += 1;
      return false;
    }
    return this.record(key, value <= threshold, atMs);
  }

  /** One Tamiyo decision took `latencyMs`. */
  recordDecisionLatency(latencyMs: number, atMs?: number): boolean {
    return this.recordValue(SloKey.DECISION_LATENCY, latencyMs, atMs);
  }

  /** One command was accepted (true) or rejected (false) by its receiver. */
  recordCommandOutcome(accepted: boolean, atMs?: number): boolean {
    return this.record(SloKey.COMMAND_ACCEPTANCE, accepted, atMs);
  }

  /** One bus message was handled `lagMs` after its publication. */
  recordBusLag(lagMs: number, atMs?: number): boolean {
    return this.recordValue(SloKey.BUS_LAG, lagMs, atMs);
  }

  /**
   * The prototype's inputs: for each `slo.<key>_objective` / `slo.<key>_actual` pair in one
   * packet's metrics, records one event of SLO `<key>` (good iff actual ≤ objective); an
   * unknown key becomes an SLO with the learned target, up to `maxKeys`. Returns the events
   * recorded.
   */
  recordFromMetrics(metrics: ReadonlyMap<string, number>, atMs: number = this.#clock.wallMs()): number {
    let recorded = 0;
    for (const [name, objective] of metrics) {
      if (!name.startsWith(SLO_PREFIX) || !name.endsWith(OBJECTIVE_SUFFIX)) continue;
      const key = name.slice(SLO_PREFIX.length, -OBJECTIVE_SUFFIX.length);
      const actual = metrics.get(`${SLO_PREFIX}${key}${ACTUAL_SUFFIX}`);
      if (key.length === 0 || actual === undefined) continue;
      let series = this.#series.get(key);
      if (series === undefined) {
        if (this.#series.size >= this.#maxKeys) {
          this.#stats.ignoredEvents += 1;
          continue;
        }
        series = {
          slo: { key, description: `telemetry pair slo.${key}_objective/_actual`, target: this.#learnedTarget },
          buckets: new Map(),
          lifetimeTotal: 0,
          lifetimeViolations: 0,
          latestMs: -Infinity,
        };
        this.#series.set(key, series);
      }
      if (this.#add(series, actual <= objective, atMs)) recorded += 1;
    }
    return recorded;
  }

  /** The status of SLO `key` at `nowMs`, or undefined for an unknown key. */
  status(key: string, nowMs: number = this.#clock.wallMs()): SloStatus | undefined {
    const series = this.#series.get(key);
    if (series === undefined) return undefined;
    const { slo } = series;
    const errorBudget = 1 - slo.target;
    const short = this.#window(series, this.#shortWindowMs, nowMs, errorBudget);
    const long = this.#window(series, this.#longWindowMs, nowMs, errorBudget);
    return {
      description: slo.description,
      target: slo.target,
      errorBudget,
      total: long.total,
      violations: long.violations,
      burnRate: long.burnRate,
      budgetRemaining: Math.max(0, 1 - long.burnRate),
      short,
      long,
      burning: short.burnRate >= this.#burnRateThreshold && long.burnRate >= this.#burnRateThreshold,
      lifetime: { total: series.lifetimeTotal, violations: series.lifetimeViolations },
    };
  }

  /** Every SLO's status, keyed by SLO key (the `slo` part of `/metrics/summary`). */
  summary(nowMs: number = this.#clock.wallMs()): Record<string, SloStatus> {
    const out: Record<string, SloStatus> = {};
    for (const key of this.#series.keys()) out[key] = this.status(key, nowMs)!;
    return out;
  }

  /** Keys of the SLOs burning at `nowMs`. */
  burning(nowMs: number = this.#clock.wallMs()): string[] {
    return [...this.#series.keys()].filter((key) => this.status(key, nowMs)!.burning);
  }

  /** Counters since construction. */
  stats(): SloTrackerStats {
    return { ...this.#stats };
  }

  #add(series: Series, ok: boolean, atMs: number): boolean {
    const latest = Math.max(series.latestMs, atMs);
    if (atMs <= latest - this.#longWindowMs) {
      this.#stats.staleEvents += 1;
      return false;
    }
    series.latestMs = latest;
    const index = Math.floor(atMs / this.#bucketMs);
    const bucket = series.buckets.get(index) ?? { total: 0, violations: 0 };
    bucket.total += 1;
    if (!ok) bucket.violations += 1;
    series.buckets.set(index, bucket);
    series.lifetimeTotal += 1;
    if (!ok) series.lifetimeViolations += 1;
    // Keep only buckets that can still fall in the long window.
    if (series.buckets.size > this.#longWindowMs / this.#bucketMs + 2) {
      const oldest = Math.floor((latest - this.#longWindowMs) / this.#bucketMs);
      for (const key of series.buckets.keys()) if (key < oldest) series.buckets.delete(key);
    }
    return true;
  }

  #window(series: Series, windowMs: number, nowMs: number, errorBudget: number): SloWindowStatus {
    // A bucket counts if any of it lies in (nowMs − windowMs, nowMs].
    const first = Math.floor((nowMs - windowMs) / this.#bucketMs);
    const last = Math.floor(nowMs / this.#bucketMs);
    let total = 0;
    let violations = 0;
    for (const [index, bucket] of series.buckets) {
      if (index < first || index > last) continue;
      total += bucket.total;
      violations += bucket.violations;
    }
    return { windowMs, total, violations, burnRate: total === 0 ? 0 : violations / total / errorBudget };
  }
}
