/**
 * The alert inputs of one telemetry packet (prototype spec §4.3 steps 3, 4, 6 and 8): the
 * packet's metrics (last value wins) plus the signals Nissa derives.
 */
import type { TelemetryPacket } from '../../leyline/index.js';
import { AlertInputMetric, DerivedInputSource } from './names.js';

/** Options of {@link alertInputsFromPacket}. */
export interface AlertInputOptions {
  /** Blueprint risk at or above which the elevated-risk flag is 1. @default 0.8 */
  readonly bsdsElevatedRiskThreshold?: number;
}

/**
 * The metrics map to pass to `AlertEngine.evaluate` (and to the Prometheus updater):
 *
 * - every metric of the packet, the last value winning for a repeated name;
 * - a `bsds_hazard_critical` / `bsds_hazard_high` event sets the matching signal to 1;
 * - `tamiyo.blueprint.risk` present → `tamiyo.bsds.elevated_risk_flag` = 1 if risk ≥ the
 *   threshold, else 0;
 * - Oona's per-stream `oona.queue_depth` (no `oona.queue.depth` in the packet) → the rule's
 *   `oona.queue.depth` = the deepest stream. The prototype's name was emitted only by its
 *   drills; this lets the rule see the bus's real depth gauge.
 */
export function alertInputsFromPacket(packet: TelemetryPacket, options: AlertInputOptions = {}): Map<string, number> {
  const threshold = options.bsdsElevatedRiskThreshold ?? 0.8;
  const metrics = new Map<string, number>();
  let deepest: number | undefined;
  for (const point of packet.metrics) {
    metrics.set(point.name, point.value);
    if (point.name === DerivedInputSource.OONA_STREAM_DEPTH) deepest = Math.max(deepest ?? point.value, point.value);
  }
  for (const event of packet.events) {
    if (event.description === DerivedInputSource.BSDS_HAZARD_CRITICAL_EVENT) metrics.set(AlertInputMetric.BSDS_HAZARD_CRITICAL_SIGNAL, 1);
    if (event.description === DerivedInputSource.BSDS_HAZARD_HIGH_EVENT) metrics.set(AlertInputMetric.BSDS_HAZARD_HIGH_SIGNAL, 1);
  }
  const risk = metrics.get(DerivedInputSource.BLUEPRINT_RISK);
  if (risk !== undefined) metrics.set(AlertInputMetric.BSDS_ELEVATED_RISK_FLAG, risk >= threshold ? 1 : 0);
  if (deepest !== undefined && !metrics.has(AlertInputMetric.QUEUE_DEPTH)) metrics.set(AlertInputMetric.QUEUE_DEPTH, deepest);
  return metrics;
}
