/**
 * Urabrask: the crucible that probes compiled kernel artifacts for hazards, the signed
 * blueprint safety data sheets (BSDS) built from its measurements, and the certification
 * service that stores them in Urza. Other subsystems import only from this file.
 */
export { Crucible } from './crucible.js';
export { issueBsds } from './bsds.js';
export { UrabraskService, type UrabraskServiceOptions } from './service.js';
export { certifyUnsheeted, type CertifyLibraryDeps, type CertifyLibrarySummary } from './certify-library.js';
