/**
 * Tezzeret: compiles Karn blueprints into self-contained kernel artifacts (format in
 * `docs/artifacts.md`), loads them back into seed modules, and forges them into Urza.
 * Other subsystems import only from this file.
 */
export { decodeArtifact, sha256Hex, type ArtifactHeader } from './artifact.js';
export { artifactSiteOf, siteOfArtifact, type ArtifactConvWiden, type ArtifactSite, type ArtifactWindow } from './artifact-site.js';
export { loadArtifact, prewarmTimings, TezzeretCompiler, type CompiledArtifact, type TezzeretCompilerOptions } from './compiler.js';
export { forgeJobsFor, siteKeyOf, type ForgeJob } from './forge-jobs.js';
export { TezzeretForge, type ForgeRunSummary, type TezzeretForgeOptions } from './forge.js';
export { createForge, forgeWalPath, type ForgeDeps } from './create-forge.js';
