/**
 * Kasmina's checkpointed state (the value of `exportState`, stored as JSON in Tolaria's
 * checkpoint header) and the schema `restoreState` reads it through: a value that does not
 * fit is an `ESPER_KASMINA_STATE_INVALID` error listing every bad path.
 */
import { z } from 'zod';
import { CONTRACT_LIMITS, ErrorCode, parsePersisted, type PersistedSource } from '../core/index.js';
import { BlendMode, BlendModeSource, SeedLifecycleStage } from '../leyline/index.js';

/** Version of {@link KasminaState}; another version is refused. */
export const KASMINA_STATE_VERSION = 3;

const id = z.string().min(1);
const count = z.number().int().nonnegative();
const finite = z.number().finite();
const unit = z.number().min(0).max(1);
const stage = z.enum(SeedLifecycleStage);

const transition = z.strictObject({ from: stage, to: stage, step: count });

const blendPlan = z.strictObject({
  mode: z.enum(BlendMode).refine((mode: BlendMode): boolean => mode !== BlendMode.UNSPECIFIED, 'a blend plan needs a mode'),
  source: z.enum(BlendModeSource),
  alphaVec: z.array(unit).max(CONTRACT_LIMITS.alphaVecMaxEntries),
  confidenceGate: unit.optional(),
  alphaLo: unit,
  alphaHi: unit,
});

const seedState = z.strictObject({
  seedId: id,
  siteId: id,
  blueprintId: id,
  commandId: id,
  germinatedEpoch: count,
  /** Every move since germination, oldest first. */
  history: z.array(transition).min(1),
  kernel: z.strictObject({
    /** Grafted at checkpoint time: `restoreState` re-fetches and re-attaches it. */
    attached: z.boolean(),
    phase: z.enum(['isolated', 'blended', 'fused', 'paused']),
    latencyMs: finite.nonnegative(),
    parameters: count,
  }),
  blend: z.strictObject({ plan: blendPlan, alpha: unit, steps: count }),
  progress: z.strictObject({ activeSteps: count, paused: z.boolean(), lossAtGermination: finite.optional() }),
  /** `last` is null when the last reported norm was not finite (JSON has no NaN). */
  gradients: z.strictObject({ sum: finite.nonnegative(), count, finite: z.boolean(), last: finite.nullable() }),
  contribution: z.strictObject({ value: finite.optional(), step: z.number().int().min(-1) }),
  isolation: z.strictObject({ violations: count, lastLeak: z.number().nonnegative() }),
  fate: z.strictObject({ cullReason: z.string(), embargoUntilStep: count, retire: z.boolean() }),
});

const seedReport = z.strictObject({
  seedId: id,
  siteId: id,
  blueprintId: id,
  commandId: id,
  germinatedStep: count,
  fate: stage,
  fateStep: count,
  fateReason: z.string(),
  contribution: finite.optional(),
  parameters: count,
  history: z.array(transition),
});

/** Schema of {@link KasminaState}. */
export const KasminaStateSchema = z.strictObject({
  version: z.literal(KASMINA_STATE_VERSION),
  step: count,
  epoch: count,
  lossEwma: finite.optional(),
  /** Site id → step until which it is embargoed. */
  embargo: z.array(z.tuple([id, count])),
  counters: z.strictObject({
    commandsApplied: count,
    gateFailures: count,
    illegalTransitions: count,
    isolationChecks: count,
    seedsCulled: count,
    seedsFossilized: count,
  }),
  seeds: z.array(seedState),
  /** Reports of the seeds already retired (reset to DORMANT or terminated). */
  retired: z.array(seedReport),
});

/** Kasmina's checkpointed state (JSON-serialisable). */
export type KasminaState = z.infer<typeof KasminaStateSchema>;

/** One seed in a {@link KasminaState}. */
export type KasminaSeedState = KasminaState['seeds'][number];

/** What {@link parseKasminaState} reads, for its errors: the code and the name `Kasmina state`. */
export const KASMINA_STATE_SOURCE: PersistedSource = Object.freeze({ code: ErrorCode.KASMINA_STATE_INVALID, what: 'Kasmina state' });

/**
 * `value` as a {@link KasminaState}.
 * @throws PersistedStateError `KASMINA_STATE_INVALID` naming every bad path (`issues`,
 *   `details.paths`) and, in the message, what is wrong there.
 */
export function parseKasminaState(value: unknown): KasminaState {
  return parsePersisted(KasminaStateSchema, value, KASMINA_STATE_SOURCE);
}
