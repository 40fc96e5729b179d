/**
 * The built-in log notifier: each alert event becomes a line (for a logger) and/or a
 * telemetry packet from source `nissa` with an `alert_fired` / `alert_resolved` event.
 */
import { buildTelemetryPacket, invalidOption, type Clock, type TelemetrySink } from '../../core/index.js';
import { TelemetryLevel } from '../../leyline/index.js';
import { AlertEventKind, type AlertEvent, type AlertNotifier } from './event.js';
import { AlertEventName, AlertSeverity } from './names.js';

/** Options of {@link LogNotifier}; give a sink, a line logger, or both. */
export interface LogNotifierOptions {
  /** Receives one packet per event (no metrics, so Nissa never evaluates its own alerts). */
  readonly sink?: TelemetrySink;
  /** Receives one line per event. */
  readonly log?: (line: string) => void;
  /** Stamps packets. @default systemClock */
  readonly clock?: Clock;
}

/** One human line for an alert event. */
export function formatAlertLine(event: AlertEvent): string {
  const verb = event.kind === AlertEventKind.FIRED ? 'FIRING' : 'RESOLVED';
  return (
    `alert ${verb} ${event.alert} [${event.severity}] source=${event.source} ${event.metric}=${event.value} ` +
    `(${event.comparator} ${event.threshold} for ${event.forSamples}) routes=${event.routes.join(',')}: ${event.summary}`
  );
}

/** Level of an alert packet: a firing page is an ERROR, a firing warning a WARNING, else INFO. */
function levelOf(event: AlertEvent): TelemetryLevel {
  if (event.kind === AlertEventKind.RESOLVED) return TelemetryLevel.INFO;
  if (event.severity === AlertSeverity.CRITICAL) return TelemetryLevel.ERROR;
  return event.severity === AlertSeverity.WARNING ? TelemetryLevel.WARNING : TelemetryLevel.INFO;
}

/** Logs alert events as lines and/or telemetry. Never throws. */
export class LogNotifier implements AlertNotifier {
  readonly name = 'log';
  readonly #options: LogNotifierOptions;

  constructor(options: LogNotifierOptions) {
    if (options.sink === undefined && options.log === undefined) {
      throw invalidOption('LogNotifierOptions', 'sink', 'a TelemetrySink or a log function', undefined);
    }
    this.#options = options;
  }

  notify(event: AlertEvent): void {
    this.#options.log?.(formatAlertLine(event));
    if (this.#options.sink === undefined) return;
    const level = levelOf(event);
    this.#options.sink.emit(
      buildTelemetryPacket({
        source: 'nissa',
        level,
        ...(this.#options.clock === undefined ? {} : { clock: this.#options.clock }),
        events: [
          {
            description: event.kind === AlertEventKind.FIRED ? AlertEventName.FIRED : AlertEventName.RESOLVED,
            level,
            attributes: {
              alert: event.alert,
              metric: event.metric,
              value: event.value,
              threshold: event.threshold,
              source: event.source,
              severity: event.severity,
              routes: event.routes.join(','),
            },
          },
        ],
      }),
    );
  }
}
