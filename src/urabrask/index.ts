/**
 * Urabrask: the crucible that probes compiled kernel artifacts for hazards, and the signed
 * blueprint safety data sheets (BSDS) built from its measurements. Other subsystems import
 * only from this file.
 */
export {
  Crucible,
  CRUCIBLE_DEFAULTS,
  HazardStatus,
  type CrucibleOptions,
  type HazardMap,
  type HazardMeasurements,
  type HazardReport,
  type HazardThresholds,
} from './crucible.js';
export {
  assessHazards,
  BSDS_DEFAULTS,
  BSDS_VERSION,
  buildBsds,
  HAZARD_SCORE_ADDITIONS,
  HIGH_HAZARD_RECOMMENDATION,
  issueBsds,
  type BsdsAssessment,
  type BsdsOptions,
} from './bsds.js';
export {
  UrabraskService,
  type CertifyInput,
  type CertifyResult,
  type UrabraskServiceOptions,
  type UrabraskServiceStats,
} from './service.js';
export {
  BENCHMARK_DEFAULTS,
  benchmarkArtifact,
  BLUEPRINT_BENCHMARK_VERSION,
  publishBenchmark,
  type BenchmarkOptions,
  type BenchmarkProfileSpec,
} from './benchmark.js';
