/**
 * Urza: the blueprint and artifact library. Other subsystems import only from this file.
 */
export { UrzaLibrary, type UrzaLibraryStats } from './library.js';
export { openUrzaLibrary, type UrzaLibraryDeps } from './open-library.js';
export type { UrzaLibraryOptions } from './library-options.js';
export { BsdsRejection, createBsdsVerifier, type BsdsVerdict, type BsdsVerifier } from './bsds-verifier.js';
export { UrzaIntegrityReason } from './names.js';
export { UrzaStorageReason } from './storage-error.js';
export { parseUrzaArtifactRef } from './artifact-ref.js';
export { UrzaPrefetchWorker, type UrzaPrefetchWorkerOptions } from './prefetch-worker.js';
export { buildGraphMetadata, GRAPH_MONITOR_DEFAULTS, type GraphLayer, type GraphMetadata } from './graph-metadata.js';
