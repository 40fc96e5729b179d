/**
 * The priority table of spec 01 — the one place it lives. Producers call
 * {@link priorityForEvent} through the telemetry builder; Oona and Weatherlight read the
 * resulting `priority` field and never recompute it.
 *
 * | Producer signal | MessagePriority |
 * |---|---|
 * | INFO | NORMAL |
 * | WARNING | NORMAL, or HIGH for the escalating events below |
 * | ERROR | HIGH |
 * | CRITICAL (incl. the events in {@link CRITICAL_EVENTS}) | CRITICAL |
 */
import { MessagePriority, TelemetryLevel } from '../leyline/index.js';

/**
 * Events that are CRITICAL whatever level their producer gives them: the guard rails
 * whose firing an operator must see at once. (Not `gate_failure`, which spec 01 lists: a
 * failed quality gate is the lifecycle working, so Kasmina sets its level — WARNING, ERROR
 * for an unclean reset.)
 */
export const CRITICAL_EVENTS: ReadonlySet<string> = new Set([
  'command_rejected',
  'dependency_guard.violation',
  'prefetch_timeout',
  'integrity_failure',
  'signature_invalid',
]);

/**
 * WARNING events that escalate to HIGH: timeouts, latency spikes, isolation violations,
 * hook/memory pressure and quarantine.
 */
export const ESCALATING_WARNING_EVENTS: ReadonlySet<string> = new Set([
  // timeouts
  'timeout',
  'tamiyo_timeout',
  'timeout_inference',
  'timeout_urza',
  'kasmina_timeout',
  'prefetch_deadline_near',
  'rollback_deadline',
  // latency spikes
  'latency_spike',
  'step_latency_high',
  'hook_budget',
  'epoch_budget',
  'kasmina_apply_slow',
  'kasmina_finalize_slow',
  'cache_lock_contention',
  // isolation
  'isolation_violation',
  'isolation_violations',
  // pressure
  'memory_pressure',
  'hook_pressure',
  'device_pressure_high',
  'cpu_pressure_high',
  // quarantine
  'bp_quarantine',
  'quarantine',
  'bsds_hazard_high',
]);

/** Orders priorities; UNSPECIFIED sorts lowest. */
export function maxPriority(a: MessagePriority, b: MessagePriority): MessagePriority {
  return a >= b ? a : b;
}

/** The effective level of an event: raised to CRITICAL for {@link CRITICAL_EVENTS}. */
export function effectiveEventLevel(level: TelemetryLevel, description: string): TelemetryLevel {
  return CRITICAL_EVENTS.has(description) ? TelemetryLevel.CRITICAL : level;
}

/** The priority of one event by the spec 01 table. */
export function priorityForEvent(level: TelemetryLevel, description: string): MessagePriority {
  switch (effectiveEventLevel(level, description)) {
    case TelemetryLevel.CRITICAL:
      return MessagePriority.CRITICAL;
    case TelemetryLevel.ERROR:
      return MessagePriority.HIGH;
    case TelemetryLevel.WARNING:
      return ESCALATING_WARNING_EVENTS.has(description) ? MessagePriority.HIGH : MessagePriority.NORMAL;
    case TelemetryLevel.INFO:
    case TelemetryLevel.UNSPECIFIED:
      return MessagePriority.NORMAL;
  }
}
