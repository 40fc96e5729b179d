/**
 * Urza: the blueprint and artifact library. Other subsystems import only from this file.
 */
export {
  resolveUrzaLibraryOptions,
  sha256Hex,
  URZA_ARTIFACT_EXTENSION,
  URZA_LIBRARY_DEFAULTS,
  URZA_SAVE_STEPS,
  UrzaLibrary,
  UrzaSaveStep,
  type ResolvedUrzaLibraryOptions,
  type UrzaArtifactRecord,
  type UrzaBlueprintEntry,
  type UrzaFaults,
  type UrzaLibraryOptions,
  type UrzaLibraryState,
  type UrzaLibraryStats,
  type UrzaListFilter,
  type UrzaLoadResult,
  type UrzaPrewarm,
  type UrzaSaveInput,
} from './library.js';
export { UrzaEvent, UrzaIntegrityReason, UrzaMetric } from './names.js';
export { formatUrzaArtifactRef, parseUrzaArtifactRef, type UrzaArtifactRef } from './artifact-ref.js';
export {
  URZA_PREFETCH_WORKER_DEFAULTS,
  UrzaPrefetchMetric,
  UrzaPrefetchWorker,
  type UrzaPrefetchStats,
  type UrzaPrefetchWorkerOptions,
  type UrzaPrefetchWorkerState,
} from './prefetch-worker.js';
export { UrzaRuntime, type FetchedKernel, type FetchKernelOptions, type UrzaRuntimeOptions } from './runtime.js';
export {
  buildGraphMetadata,
  GRAPH_METADATA_VERSION,
  GRAPH_MONITOR_DEFAULTS,
  MONITOR_BAND_FACTORS,
  parseGraphMetadata,
  type GraphActivation,
  type GraphCapabilities,
  type GraphLayer,
  type GraphMetadata,
  type GraphMetadataOptions,
  type GraphMonitor,
  type GraphParameter,
  type GraphParameters,
} from './graph-metadata.js';
