/**
 * Feature layouts of the policy graph's node types (reference §5.2–§5.7 mapped onto the
 * typed inputs) and the scalar helpers node and edge builders share.
 */
import { SeedLifecycleStage, SeedSiteKind, type SeedSiteDescriptor, type SeedState } from '../leyline/index.js';
import type { GraphMetadata } from '../urza/index.js';

/**
 * Global node features (16): `[value, present]` pairs for six metrics, then epoch, step,
 * seed count and epoch progress (§5.2 mapped onto the typed packet).
 */
export const GLOBAL_FEATURES = [
  'loss_ewma',
  'loss_ewma_present',
  'validation_loss',
  'validation_loss_present',
  'training_loss',
  'training_loss_present',
  'gradient_norm',
  'gradient_norm_present',
  'samples_per_s',
  'samples_per_s_present',
  'hook_latency_ms',
  'hook_latency_ms_present',
  'epoch',
  'log_step',
  'tanh_seed_count',
  'epoch_progress',
] as const;

/** Seed node features (14). */
export const SEED_FEATURES = [
  'stage',
  'alpha',
  'blend_allowed',
  'tanh_isolation_violations',
  'contribution',
  'contribution_present',
  'gradient_norm',
  'gradient_norm_present',
  'learning_rate',
  'learning_rate_present',
  'age',
  'risk',
  'blueprint_embedding',
  'alpha_progress',
] as const;

/** Site node features (10). */
export const SITE_FEATURES = [
  'kind_dense',
  'kind_conv',
  'log_width',
  'depth_ratio',
  'occupied',
  'occupant_stage',
  'occupant_alpha',
  'occupant_contribution',
  'occupant_contribution_present',
  'headroom',
] as const;

/** Blueprint node features (14). */
export const BLUEPRINT_FEATURES = [
  'embedding',
  'tier',
  'risk',
  'stage',
  'param_log',
  'param_log_present',
  'bsds_present',
  'hazard_band',
  'handling_class',
  'quarantined',
  'approval_required',
  'fits_site_ratio',
  'candidate_score',
  'blend_mode_breadth',
] as const;

/** Layer node features (12). */
export const LAYER_FEATURES = [
  'depth_ratio',
  'descriptor_present',
  'parameter_count',
  'parameter_count_present',
  'rank',
  'log_fan_in',
  'log_fan_out',
  'role_embedding',
  'activation_embedding',
  'parameter_share',
  'float_dtype',
  'kept_fraction',
] as const;

/** Activation node features (8). */
export const ACTIVATION_FEATURES = [
  'kind_embedding',
  'descriptor_present',
  'position',
  'nonlinearity',
  'saturating',
  'piecewise_linear',
  'normalising',
  'share',
] as const;

/** Parameter node features (10). */
export const PARAMETER_FEATURES = [
  'min',
  'max',
  'span',
  'default',
  'value_present',
  'value_position',
  'owner_risk',
  'owner_stage',
  'descriptor_present',
  'integer_range',
] as const;

export const STAGE_MAX = SeedLifecycleStage.SEED_STAGE_TERMINATED;
export const TIER_MAX = 3;
export const HAZARD_MAX = 4;
export const HANDLING_MAX = 3;
export const BLEND_MODE_COUNT = 4;
/** log2(1 + 4096) ≈ 12: widths and fans up to 4096 map into [0, 1]. */
export const LOG_WIDTH_SCALE = 12;
/** Raw inputs are clamped to this magnitude so float32 stays finite. */
export const RAW_LIMIT = 1e6;

/** Shape traits of each activation kind Urza names (see urza graph-metadata). */
export const ACTIVATION_TRAITS: Readonly<
  Record<string, readonly [strength: number, saturating: number, piecewise: number, normalising: number]>
> = {
  linear: [0, 0, 1, 0],
  relu: [0.5, 0, 1, 0],
  gelu: [0.6, 0, 0, 0],
  sigmoid: [0.8, 1, 0, 0],
  tanh: [0.8, 1, 0, 0],
  softmax: [1, 1, 0, 1],
  normalise: [0.3, 0, 0, 1],
};

/** Whether `graph` was compiled for exactly `site` (kind and shape). */
export function compiledFor(graph: GraphMetadata, site: SeedSiteDescriptor): boolean {
  const compiled = graph.capabilities.compiledSite;
  return (
    compiled.kind === SeedSiteKind[site.kind] &&
    compiled.shape.length === site.shape.length &&
    compiled.shape.every((d, i) => d === site.shape[i])
  );
}

/** A seed holds its site unless the site is empty (DORMANT/UNKNOWN) or freed (CULLED/TERMINATED). */
export function occupies(seed: SeedState): boolean {
  switch (seed.stage) {
    case SeedLifecycleStage.SEED_STAGE_UNKNOWN:
    case SeedLifecycleStage.SEED_STAGE_DORMANT:
    case SeedLifecycleStage.SEED_STAGE_CULLED:
    case SeedLifecycleStage.SEED_STAGE_TERMINATED:
      return false;
    default:
      return true;
  }
}

export function blendAllowed(seed: SeedState): boolean {
  if (seed.metrics !== undefined) return seed.metrics.blendAllowed;
  return seed.stage >= SeedLifecycleStage.SEED_STAGE_BLENDING && seed.stage <= SeedLifecycleStage.SEED_STAGE_PROBATIONARY;
}

export function stageNorm(seed: SeedState): number {
  return clamp01(seed.stage / STAGE_MAX);
}

/** Role of a variable: its last path segment without trailing digits (`expert0/w1` → `w`). */
export function layerRole(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.replace(/\d+$/, '') || last;
}

export function chain(count: number): (readonly [number, number])[] {
  const pairs: [number, number][] = [];
  for (let i = 0; i + 1 < count; i += 1) pairs.push([i, i + 1]);
  return pairs;
}

export function inRange(index: number, count: number): boolean {
  return Number.isInteger(index) && index >= 0 && index < count;
}

export function sumOf<T>(items: readonly T[], f: (item: T) => number): number {
  let sum = 0;
  for (const item of items) sum += f(item);
  return sum;
}

/** Finite and float32-safe: non-finite → 0, magnitude clamped to {@link RAW_LIMIT}. */
export function fin(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return x > RAW_LIMIT ? RAW_LIMIT : x < -RAW_LIMIT ? -RAW_LIMIT : x;
}

export function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0;
}
