/**
 * Urza telemetry names, spelled as the reference gives them (prototype-blueprint-pipeline
 * §4.5: Weatherlight exports the library counters as `urza.library.<key>`).
 */

/** Urza library metric names. */
export const UrzaMetric = {
  CACHE_HITS: 'urza.library.cache_hits',
  CACHE_MISSES: 'urza.library.cache_misses',
  CACHE_EXPIRED: 'urza.library.cache_expired',
  EVICTIONS: 'urza.library.evictions',
  INTEGRITY_FAILURES: 'urza.library.integrity_failures',
  SLOW_QUERIES: 'urza.library.slow_queries',
  BREAKER_DENIED: 'urza.library.breaker_denied',
  BREAKER_OPEN_TOTAL: 'urza.library.breaker_open_total',
  BREAKER_STATE: 'urza.library.breaker_state',
  LOOKUP_LATENCY_MS: 'urza.library.lookup_latency_ms',
} as const;

/** Union of {@link UrzaMetric} values. */
export type UrzaMetric = (typeof UrzaMetric)[keyof typeof UrzaMetric];

/** Urza event descriptions. `integrity_failure` is CRITICAL by the spec 01 table. */
export const UrzaEvent = {
  INTEGRITY_FAILURE: 'integrity_failure',
} as const;

/** Union of {@link UrzaEvent} values. */
export type UrzaEvent = (typeof UrzaEvent)[keyof typeof UrzaEvent];

/** Why stored data was refused as an integrity failure. */
export const UrzaIntegrityReason = {
  /** The artifact file's SHA-256 differs from the checksum in its row. */
  CHECKSUM_MISMATCH: 'checksum_mismatch',
  /** The row names an artifact file that does not exist. */
  MISSING_ARTIFACT: 'missing_artifact',
  /** The stored descriptor is not a valid `BlueprintDescriptor` encoding. */
  DESCRIPTOR_UNDECODABLE: 'descriptor_undecodable',
  /** The stored safety data sheet is not a valid `BSDS` encoding (e.g. truncated). */
  BSDS_UNDECODABLE: 'bsds_undecodable',
  /** The stored sheet fails its signature check (`detail`: unsigned, unknown_key, bad_signature). */
  BSDS_UNVERIFIED: 'bsds_unverified',
  /** The stored sheet is validly signed but names another blueprint or an artifact Urza does not hold. */
  BSDS_MISMATCH: 'bsds_mismatch',
  /** The stored graph metadata is not valid JSON of the current layout, or names another blueprint. */
  GRAPH_METADATA_INVALID: 'graph_metadata_invalid',
} as const;

/** Union of {@link UrzaIntegrityReason} values. */
export type UrzaIntegrityReason = (typeof UrzaIntegrityReason)[keyof typeof UrzaIntegrityReason];
