/**
 * The Prometheus side of the alert inputs: one gauge per rule input, labelled by `source`,
 * so Prometheus can run the same rules (see `rules-file.ts`). The coverage gauge
 * (`tamiyo_gnn_feature_coverage`) belongs to Nissa's metrics module; the bridge reads its
 * name from the rule and leaves it alone.
 */
import { Gauge, type Registry } from 'prom-client';
import { optionChecks } from '../../core/index.js';
import type { AlertRule } from './rule.js';
import { alertRules } from './rules.js';

/** Options of {@link registerAlertInputs}. */
export interface AlertInputBridgeOptions {
  /** @default alertRules() */
  readonly rules?: readonly AlertRule[];
  /**
   * Distinct `source` label values per gauge; later sources are reported as
   * `source="other"` (label cardinality stays bounded). @default 32
   */
  readonly maxSources?: number;
}

/** Updates the alert-input gauges from one packet's metrics. */
export type AlertInputUpdater = (metrics: ReadonlyMap<string, number>, source: string) => void;

/** The `source` value used past `maxSources`. */
export const OTHER_SOURCE = 'other';

/**
 * Registers a gauge for each rule input with `prometheusBySource` (one per series name;
 * an existing metric of that name in `registry` is reused) and returns the updater to call
 * with every evaluated packet, next to `AlertEngine.evaluate`.
 */
export function registerAlertInputs(registry: Registry, options: AlertInputBridgeOptions = {}): AlertInputUpdater {
  const rules = options.rules ?? alertRules();
  const maxSources = optionChecks('AlertInputBridgeOptions').integer('maxSources', options.maxSources ?? 32, { min: 1 });
  const gauges = new Map<string, Gauge<'source'>>();
  const bindings: { metric: string; gauge: Gauge<'source'> }[] = [];
  for (const rule of rules) {
    if (!rule.prometheusBySource) continue;
    let gauge = gauges.get(rule.prometheusMetric);
    if (gauge === undefined) {
      const existing = registry.getSingleMetric(rule.prometheusMetric);
      gauge =
        existing instanceof Gauge
          ? (existing as Gauge<'source'>)
          : new Gauge({
              name: rule.prometheusMetric,
              help: `Latest ${rule.metric} per source (alert input of ${rule.name})`,
              labelNames: ['source'],
              registers: [registry],
            });
      gauges.set(rule.prometheusMetric, gauge);
    }
    if (!bindings.some((b) => b.metric === rule.metric)) bindings.push({ metric: rule.metric, gauge });
  }
  const seen = new Set<string>();
  return (metrics, source) => {
    for (const { metric, gauge } of bindings) {
      const value = metrics.get(metric);
      if (value === undefined) continue;
      if (!seen.has(source) && seen.size < maxSources) seen.add(source);
      gauge.set({ source: seen.has(source) ? source : OTHER_SOURCE }, value);
    }
  };
}
