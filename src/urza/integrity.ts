/** Integrity failures of what Urza stores: counted, reported as one CRITICAL `integrity_failure` event each, thrown typed. */
import { buildTelemetryPacket, ErrorCode, EsperError, type Clock, type TelemetrySink } from '../core/index.js';
import { TelemetryLevel } from '../leyline/index.js';
import { UrzaEvent, UrzaMetric, type UrzaIntegrityReason } from './names.js';

/** One refused piece of stored data. */
export interface IntegrityFailure {
  readonly blueprintId: string;
  readonly reason: UrzaIntegrityReason;
  /** What is wrong, for the error message (`its artifact at site … is missing`). */
  readonly problem: string;
  /** Event attributes besides `blueprint_id` and `reason`; `site_key` and `detail` also go into the error's details. */
  readonly attributes?: Readonly<Record<string, string>>;
  readonly cause?: unknown;
}

/** Counts integrity failures and reports each one. */
export class IntegrityReporter {
  readonly #telemetry: TelemetrySink | undefined;
  readonly #clock: Clock;
  #count = 0;

  constructor(telemetry: TelemetrySink | undefined, clock: Clock) {
    this.#telemetry = telemetry;
    this.#clock = clock;
  }

  /** Failures reported so far. */
  get count(): number {
    return this.#count;
  }

  /** Counts `failure`, emits its CRITICAL event, and returns the `URZA_INTEGRITY_FAILURE` to throw. */
  fail(failure: IntegrityFailure): EsperError {
    const { blueprintId, reason } = failure;
    const attributes = failure.attributes ?? {};
    this.#count += 1;
    this.#telemetry?.emit(
      buildTelemetryPacket({
        source: 'urza',
        clock: this.#clock,
        events: [
          {
            description: UrzaEvent.INTEGRITY_FAILURE,
            level: TelemetryLevel.CRITICAL,
            attributes: { blueprint_id: blueprintId, reason, ...attributes },
          },
        ],
        metrics: [{ name: UrzaMetric.INTEGRITY_FAILURES, value: this.#count, unit: 'count' }],
      }),
    );
    const siteKey = attributes['site_key'];
    const detail = attributes['detail'];
    return new EsperError(
      ErrorCode.URZA_INTEGRITY_FAILURE,
      `blueprint ${blueprintId} failed its integrity check: ${failure.problem} (${reason})`,
      {
        cause: failure.cause,
        details: { blueprintId, reason, ...(siteKey === undefined ? {} : { siteKey }), ...(detail === undefined ? {} : { detail }) },
      },
    );
  }
}
