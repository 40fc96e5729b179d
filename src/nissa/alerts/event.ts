/**
 * What the alert engine tells the world: fired and resolved events, and the notifier seam
 * they go through.
 */
import type { AlertRoute, AlertSeverity } from './names.js';
import type { Comparator } from './rule.js';

/** Whether an event opens or closes an alert. */
export const AlertEventKind = {
  FIRED: 'fired',
  RESOLVED: 'resolved',
} as const;

/** One of the {@link AlertEventKind} values. */
export type AlertEventKind = (typeof AlertEventKind)[keyof typeof AlertEventKind];

/** A rule fired or resolved for one source. */
export interface AlertEvent {
  readonly kind: AlertEventKind;
  /** The rule's name. */
  readonly alert: string;
  readonly metric: string;
  /** The sample that fired or resolved the alert. */
  readonly value: number;
  readonly comparator: Comparator;
  readonly threshold: number;
  readonly forSamples: number;
  /** The packet's source subsystem. */
  readonly source: string;
  readonly routes: readonly AlertRoute[];
  readonly severity: AlertSeverity;
  readonly summary: string;
  /** Wall time of the evaluation, ms since the Unix epoch. */
  readonly atMs: number;
  /** For `resolved`: when the alert fired. */
  readonly firedAtMs?: number;
}

/**
 * Where alert events go. `notify` must return at once and never throw: slow work (HTTP)
 * runs in the background, bounded, and counts its failures.
 */
export interface AlertNotifier {
  /** Short name for logs and stats ("log", "webhook"). */
  readonly name: string;
  notify(event: AlertEvent): void;
  /** Waits for background deliveries; idempotent. */
  close?(): Promise<void>;
}
