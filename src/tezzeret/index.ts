/**
 * Tezzeret: compiles Karn blueprints into self-contained kernel artifacts (format in
 * `docs/artifacts.md`), with guard spec and digest, checksum and measured prewarm, and
 * loads them back into seed modules. Other subsystems import only from this file.
 */
export {
  ARTIFACT_FORMAT_VERSION,
  ARTIFACT_MAGIC,
  ARTIFACT_PREFIX_BYTES,
  canonicalJson,
  decodeArtifact,
  encodeArtifact,
  guardDigest,
  sha256Hex,
  type ArtifactHeader,
  type ArtifactVariable,
  type DecodedArtifact,
  type GuardSpec,
} from './artifact.js';
export {
  loadArtifact,
  percentile,
  TezzeretCompiler,
  type CompiledArtifact,
  type CompileOptions,
  type LoadArtifactOptions,
  type PrewarmTimings,
  type TezzeretCompilerOptions,
} from './compiler.js';
export { TezzeretMetric } from './names.js';
export {
  ForgeStrategy,
  forgeJobsFor,
  siteKeyOf,
  TEZZERET_FORGE_DEFAULTS,
  TEZZERET_FORGE_SOURCE,
  TezzeretForge,
  TezzeretForgeEvent,
  TezzeretForgeMetric,
  type ForgeArtifactStore,
  type ForgeCompiler,
  type ForgeJob,
  type ForgeJobResult,
  type ForgeRunSummary,
  type TezzeretForgeOptions,
} from './forge.js';
