/**
 * Seed lifecycle stages as Tamiyo's policies and field reports read them from the seed states
 * of a state packet — one definition of each set.
 */
import { SeedLifecycleStage } from '../leyline/index.js';

const S = SeedLifecycleStage;

/** A seed that is growing: grafted or about to be, not yet decided (counts against a policy's live-seed limit). */
export const LIVE_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  S.SEED_STAGE_GERMINATED,
  S.SEED_STAGE_TRAINING,
  S.SEED_STAGE_BLENDING,
  S.SEED_STAGE_SHADOWING,
  S.SEED_STAGE_PROBATIONARY,
]);

/** On the cull path (CULLED → EMBARGOED → RESETTING → DORMANT). */
export const CULL_PATH_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  S.SEED_STAGE_CULLED,
  S.SEED_STAGE_EMBARGOED,
  S.SEED_STAGE_RESETTING,
]);

/** Growing or kept: DORMANT after one of these means the seed was culled and reset. */
export const HELD_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([...LIVE_STAGES, S.SEED_STAGE_FOSSILIZED]);

/** A seed in one of these stages keeps its site busy: growing, a fossil for good, culled until its reset. */
export const BUSY_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([...HELD_STAGES, ...CULL_PATH_STAGES]);
