/**
 * Oona's logical streams and the one routing table from message type to stream.
 *
 * Every message goes to its family stream, except that HIGH and CRITICAL messages go to
 * the emergency stream (spec 01 "Priority routing"); HIGH over the emergency budget is
 * demoted back to its family stream. Departure from the prototype (reference
 * prototype-tolaria-oona-nissa-weatherlight §3.1/§3.5): catalog updates get their own
 * stream instead of sharing `kernels.ready` with prefetch answers, field reports get a
 * dedicated stream, state packets (one per training step) get theirs so that consumers of
 * commands and acknowledgements do not verify and decode every one of them, and there is no
 * sticky "conservative mode" rerouting.
 */
import { BusMessageType, assertNever } from '../leyline/index.js';

/** Logical stream keys. */
export const LogicalStream = {
  NORMAL: 'normal',
  STATE: 'state',
  EMERGENCY: 'emergency',
  TELEMETRY: 'telemetry',
  POLICY: 'policy',
  FIELD_REPORTS: 'fieldReports',
  KERNEL_REQUESTS: 'kernelRequests',
  KERNEL_READY: 'kernelReady',
  KERNEL_ERRORS: 'kernelErrors',
  KERNEL_CATALOG: 'kernelCatalog',
  DEAD_LETTER: 'deadLetter',
} as const;

/** One of the {@link LogicalStream} keys. */
export type LogicalStream = (typeof LogicalStream)[keyof typeof LogicalStream];

/** Physical stream name (Redis key) per logical stream. */
export type StreamNames = Readonly<Record<LogicalStream, string>>;

/**
 * Default stream names, before the prefix: the prototype's names where it had them, with
 * `oona` written as the Redis Cluster hash tag `{oona}`. A consumer reads several streams
 * in one XREADGROUP, which Redis Cluster refuses (CROSSSLOT) unless every key hashes to one
 * slot; Redis hashes only the first `{…}` of a key, so all streams of a bus land in one
 * slot. Departure from the prototype (reference prototype-tolaria-oona-nissa-weatherlight
 * §3.1): its names (`oona.normal`, ...) had no tag; a deployment still holding entries
 * under them must drain them first (docs/operator-runbook.md "Redis Cluster").
 */
export const DEFAULT_STREAM_NAMES: StreamNames = Object.freeze({
  normal: '{oona}.normal',
  state: '{oona}.state',
  emergency: '{oona}.emergency',
  telemetry: '{oona}.telemetry',
  policy: '{oona}.policy',
  fieldReports: '{oona}.field_reports',
  kernelRequests: '{oona}.kernels.requests',
  kernelReady: '{oona}.kernels.ready',
  kernelErrors: '{oona}.kernels.errors',
  kernelCatalog: '{oona}.kernels.catalog',
  deadLetter: '{oona}.deadletter',
});

/**
 * The part of `key` Redis Cluster hashes to pick its slot: the text between the first `{`
 * and the first `}` after it when that text is not empty, else the whole key (the rule of
 * the Redis Cluster specification, "Hash tags"). Keys with equal hash keys share a slot.
 */
export function clusterHashKey(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/**
 * Stream names with `prefix` prepended (tests use a unique prefix each) and any name
 * overridden by `overrides`. The prefix comes first so that every key of a bus starts with
 * it (cleanup by prefix); a prefix carrying its own hash tag (`{fleet-a}:`) moves the whole
 * bus to that tag's slot, since Redis hashes the first `{…}` only.
 */
export function resolveStreamNames(prefix = '', overrides: Partial<Record<LogicalStream, string>> = {}): StreamNames {
  const names = {} as Record<LogicalStream, string>;
  for (const key of Object.values(LogicalStream)) {
    names[key] = overrides[key] ?? `${prefix}${DEFAULT_STREAM_NAMES[key]}`;
  }
  return Object.freeze(names);
}

/** The family stream of a message type: where it goes unless it is HIGH or CRITICAL. */
export function familyStream(type: BusMessageType): LogicalStream {
  switch (type) {
    case BusMessageType.SYSTEM_STATE:
      return LogicalStream.STATE;
    case BusMessageType.ADAPTATION_COMMAND:
    case BusMessageType.COMMAND_ACK:
    case BusMessageType.CONTROL_DECISION:
    case BusMessageType.RUN_ANNOUNCEMENT:
    case BusMessageType.BSDS_ISSUED:
    case BusMessageType.BSDS_FAILED:
    case BusMessageType.BENCHMARK_REPORT:
      return LogicalStream.NORMAL;
    case BusMessageType.TELEMETRY:
      return LogicalStream.TELEMETRY;
    case BusMessageType.POLICY_UPDATE:
      return LogicalStream.POLICY;
    case BusMessageType.FIELD_REPORT:
      return LogicalStream.FIELD_REPORTS;
    case BusMessageType.KERNEL_PREFETCH_REQUEST:
      return LogicalStream.KERNEL_REQUESTS;
    case BusMessageType.KERNEL_PREFETCH_READY:
      return LogicalStream.KERNEL_READY;
    case BusMessageType.KERNEL_PREFETCH_ERROR:
      return LogicalStream.KERNEL_ERRORS;
    case BusMessageType.KERNEL_CATALOG_UPDATE:
      return LogicalStream.KERNEL_CATALOG;
    case BusMessageType.EMERGENCY_SIGNAL:
      return LogicalStream.EMERGENCY;
    case BusMessageType.UNSPECIFIED:
      throw new RangeError('BUS_MESSAGE_TYPE_UNSPECIFIED has no stream');
    default:
      return assertNever(type, 'bus message type');
  }
}

/**
 * Whether messages of `type` may be shed under back-pressure: only telemetry (and only at
 * LOW/NORMAL priority — the caller checks the priority). Commands, field reports, policy
 * updates, kernel messages and everything else are never shed.
 */
export function sheddable(type: BusMessageType): boolean {
  return type === BusMessageType.TELEMETRY;
}
