/**
 * Every seed-module family, registered in one place (spec 02 "Registries"). Add a family
 * by writing `families/<name>.ts` and listing it here.
 */
import type { FamilyConfig, FamilyId } from '../family.js';
import { bottleneckMlpFamily } from './bottleneck-mlp.js';
import { conv3x3BlockFamily } from './conv3x3-block.js';
import { depthwiseSeparableFamily } from './depthwise-separable.js';
import { gatedLinearUnitFamily } from './gated-linear-unit.js';
import { highwayGateFamily } from './highway-gate.js';
import { lowRankAdapterFamily } from './low-rank-adapter.js';
import { mixtureOfExpertsFamily } from './mixture-of-experts.js';
import { normAffineFamily } from './norm-affine.js';
import { residualMlpFamily } from './residual-mlp.js';
import { selfAttentionFamily } from './self-attention.js';
import { squeezeExciteFamily } from './squeeze-excite.js';
import { unstableFeedbackFamily } from './unstable-feedback.js';
import { widenConvFamily } from './widen-conv.js';
import { widenFamily } from './widen.js';
import { zeroControlFamily } from './zero-control.js';

/** All families, in a stable order. */
export const SEED_FAMILIES: readonly FamilyConfig[] = Object.freeze([
  residualMlpFamily,
  bottleneckMlpFamily,
  lowRankAdapterFamily,
  conv3x3BlockFamily,
  depthwiseSeparableFamily,
  squeezeExciteFamily,
  gatedLinearUnitFamily,
  selfAttentionFamily,
  normAffineFamily,
  mixtureOfExpertsFamily,
  highwayGateFamily,
  unstableFeedbackFamily,
  zeroControlFamily,
  widenFamily,
  widenConvFamily,
]);

const BY_ID: ReadonlyMap<FamilyId, FamilyConfig> = new Map(SEED_FAMILIES.map((f) => [f.id, f]));

/** The family registered under `id`, if any. */
export function familyById(id: string): FamilyConfig | undefined {
  return BY_ID.get(id as FamilyId);
}
