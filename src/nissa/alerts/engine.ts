/**
 * The alert engine: evaluates each packet's metrics against the rule table, counting
 * consecutive breaching samples per rule and source, and sends fired and resolved events to
 * its notifiers.
 *
 * Departure from prototype spec §4.5 (its "[quirk, important]"): there, one streak per rule
 * counted every packet with any metrics from any source, so a packet from another
 * subsystem, or one merely lacking the metric, reset the streak and silently deactivated the
 * alert, and nothing said it had cleared. Here a streak belongs to (rule, source) and only
 * packets carrying the rule's metric count: a breaching sample extends it, a sample within
 * the threshold resets it and resolves an active alert with a `resolved` event, and a packet
 * without the metric changes nothing. This is also what Prometheus does with the same rules
 * (one series per source, see `rules-file.ts`).
 */
import { optionChecks, systemClock, type Clock } from '../../core/index.js';
import { AlertEventKind, type AlertEvent, type AlertNotifier } from './event.js';
import { breaches, severityOf, type AlertRule } from './rule.js';
import { alertRules } from './rules.js';

/** Options of {@link AlertEngine}. */
export interface AlertEngineOptions {
  /** @default alertRules() (the eight prototype rules at their default settings) */
  readonly rules?: readonly AlertRule[];
  /** Each receives every event, in order. @default [] */
  readonly notifiers?: readonly AlertNotifier[];
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * Cap on tracked (rule, source) streams; samples of further streams are ignored and
   * counted in `stats().untrackedSamples`. Sources are subsystem names, so the cap only
   * guards against a misbehaving producer. @default 4096
   */
  readonly maxStreams?: number;
  /** Called when a notifier throws (it must not); the event still reaches the others. */
  readonly onNotifierError?: (error: unknown, notifier: AlertNotifier, event: AlertEvent) => void;
}

/** An alert that is currently firing. */
export interface ActiveAlert {
  readonly alert: string;
  readonly metric: string;
  readonly source: string;
  /** The latest breaching sample. */
  readonly value: number;
  readonly routes: AlertRule['routes'];
  readonly severity: AlertEvent['severity'];
  readonly firedAtMs: number;
}

/** Counters of an {@link AlertEngine}. */
export interface AlertEngineStats {
  readonly evaluations: number;
  readonly fired: number;
  readonly resolved: number;
  readonly untrackedSamples: number;
  readonly notifierErrors: number;
}

/** The `alerts` part of `/metrics/summary`: every rule with at least one active source. */
export type AlertSummary = Record<
  string,
  { metric: string; routes: readonly string[]; severity: string; active: { source: string; value: number; firedAtMs: number }[] }
>;

interface Stream {
  streak: number;
  active?: { value: number; firedAtMs: number };
}

/** Evaluates metrics against alert rules; see the module comment for the semantics. */
export class AlertEngine {
  readonly #rules: readonly AlertRule[];
  readonly #notifiers: readonly AlertNotifier[];
  readonly #clock: Clock;
  readonly #maxStreams: number;
  readonly #onNotifierError: AlertEngineOptions['onNotifierError'];
  /** `${rule}\u0000${source}` → stream. */
  readonly #streams = new Map<string, Stream>();
  #stats = { evaluations: 0, fired: 0, resolved: 0, untrackedSamples: 0, notifierErrors: 0 };

  constructor(options: AlertEngineOptions = {}) {
    const check = optionChecks('AlertEngineOptions');
    this.#rules = options.rules ?? alertRules();
    for (const rule of this.#rules) {
      check.integer(`rules[${rule.name}].forSamples`, rule.forSamples, { min: 1 });
      check.number(`rules[${rule.name}].threshold`, rule.threshold);
    }
    const names = new Set(this.#rules.map((r) => r.name));
    if (names.size !== this.#rules.length) check.fail('rules', 'rules with distinct names', this.#rules.length);
    this.#notifiers = options.notifiers ?? [];
    this.#clock = options.clock ?? systemClock;
    this.#maxStreams = check.integer('maxStreams', options.maxStreams ?? 4_096, { min: 1 });
    this.#onNotifierError = options.onNotifierError;
  }

  /** The rules evaluated, in table order. */
  get rules(): readonly AlertRule[] {
    return this.#rules;
  }

  /**
   * Evaluates one packet's metrics from `source`; returns the events it caused (also sent to
   * the notifiers). Never waits and never throws for a notifier's sake.
   */
  evaluate(metrics: ReadonlyMap<string, number>, source: string): AlertEvent[] {
    this.#stats.evaluations += 1;
    const events: AlertEvent[] = [];
    for (const rule of this.#rules) {
      const value = metrics.get(rule.metric);
      if (value === undefined || Number.isNaN(value)) continue;
      const key = `${rule.name}\u0000${source}`;
      let stream = this.#streams.get(key);
      if (stream === undefined) {
        if (!breaches(rule, value)) continue; // nothing to reset; do not spend a slot
        if (this.#streams.size >= this.#maxStreams) {
          this.#stats.untrackedSamples += 1;
          continue;
        }
        stream = { streak: 0 };
        this.#streams.set(key, stream);
      }
      if (breaches(rule, value)) {
        stream.streak += 1;
        if (stream.active !== undefined) {
          stream.active.value = value;
        } else if (stream.streak >= rule.forSamples) {
          const atMs = this.#clock.wallMs();
          stream.active = { value, firedAtMs: atMs };
          this.#stats.fired += 1;
          events.push(this.#event(AlertEventKind.FIRED, rule, value, source, atMs));
        }
      } else {
        if (stream.active !== undefined) {
          const atMs = this.#clock.wallMs();
          this.#stats.resolved += 1;
          events.push(this.#event(AlertEventKind.RESOLVED, rule, value, source, atMs, stream.active.firedAtMs));
        }
        this.#streams.delete(key);
      }
    }
    for (const event of events) this.#dispatch(event);
    return events;
  }

  /** Alerts currently firing, in rule order then source order of first breach. */
  active(): ActiveAlert[] {
    const out: ActiveAlert[] = [];
    for (const rule of this.#rules) {
      const prefix = `${rule.name}\u0000`;
      for (const [key, stream] of this.#streams) {
        if (stream.active === undefined || !key.startsWith(prefix)) continue;
        out.push({
          alert: rule.name,
          metric: rule.metric,
          source: key.slice(prefix.length),
          value: stream.active.value,
          routes: rule.routes,
          severity: severityOf(rule.routes),
          firedAtMs: stream.active.firedAtMs,
        });
      }
    }
    return out;
  }

  /** Whether `alert` is firing (for `source`, or for any source). */
  isActive(alert: string, source?: string): boolean {
    return this.active().some((a) => a.alert === alert && (source === undefined || a.source === source));
  }

  /** Active alerts grouped by rule, for `/metrics/summary`. */
  summary(): AlertSummary {
    const out: AlertSummary = {};
    for (const alert of this.active()) {
      const entry = (out[alert.alert] ??= { metric: alert.metric, routes: alert.routes, severity: alert.severity, active: [] });
      entry.active.push({ source: alert.source, value: alert.value, firedAtMs: alert.firedAtMs });
    }
    return out;
  }

  /** Counters since construction. */
  stats(): AlertEngineStats {
    return { ...this.#stats };
  }

  #event(kind: AlertEventKind, rule: AlertRule, value: number, source: string, atMs: number, firedAtMs?: number): AlertEvent {
    return {
      kind,
      alert: rule.name,
      metric: rule.metric,
      value,
      comparator: rule.comparator,
      threshold: rule.threshold,
      forSamples: rule.forSamples,
      source,
      routes: rule.routes,
      severity: severityOf(rule.routes),
      summary: rule.summary,
      atMs,
      ...(firedAtMs === undefined ? {} : { firedAtMs }),
    };
  }

  #dispatch(event: AlertEvent): void {
    for (const notifier of this.#notifiers) {
      try {
        notifier.notify(event);
      } catch (error) {
        this.#stats.notifierErrors += 1;
        this.#onNotifierError?.(error, notifier, event);
      }
    }
  }
}
