/** Options of the heuristic policy, their defaults (anchor §1) and their validation. */
import { optionChecks } from '../core/index.js';

/** Options of {@link HeuristicPolicy}; defaults from the anchor (§1). */
export interface HeuristicPolicyOptions {
  /** Version stamped on proposals. @default 'heuristic-v1' */
  readonly version?: string;
  /** Relative epoch-on-epoch accuracy improvement below which an epoch is a plateau epoch. @default 0.03 */
  readonly plateauRelativeImprovement?: number;
  /** Consecutive plateau epochs that latch "stabilised". @default 3 */
  readonly stabilizationEpochs?: number;
  /** Consecutive plateau epochs before a germination. @default 3 */
  readonly plateauEpochsToGerminate?: number;
  /** Completed epochs before the first germination. @default 5 */
  readonly minEpochs?: number;
  /** Live seeds at a time (sequential growth). @default 1 */
  readonly maxSeeds?: number;
  /** Epochs without beating the best accuracy since germination that cull a seed. @default 5 */
  readonly pruneAfterEpochs?: number;
  /** Accuracy drop below the value at germination that culls a seed (fraction; 0.02 = 2 points). @default 0.02 */
  readonly pruneAccuracyDrop?: number;
  /** Youngest seed (epochs since germination) the accuracy rules may cull. @default 2 */
  readonly minPruneAgeEpochs?: number;
  /** Epochs a site stays closed to germination after one of its seeds is culled. @default 5 */
  readonly embargoEpochs?: number;
  /** Penalty added to a blueprint per culled seed. @default 2.0 */
  readonly penaltyOnCull?: number;
  /** Factor applied to every penalty per epoch, in [0, 1]. @default 0.5 */
  readonly penaltyDecayPerEpoch?: number;
  /** Blueprints whose penalty exceeds this are skipped. @default 3.0 */
  readonly penaltySkipThreshold?: number;
  /**
   * Capacity growth: at an epoch boundary, when the host does not overfit (its validation
   * loss is at most `capacityGapMax` above the epoch's mean training loss, relative), widen
   * a hidden layer (a free WIDEN site, with an offered blueprint that fits it) without
   * waiting for a validation plateau. @default true
   */
  readonly capacityGrowth?: boolean;
  /** Completed epochs before a capacity growth. @default 1 */
  readonly capacityMinEpochs?: number;
  /** Largest relative validation-over-training loss gap at which the host counts as capacity-bound. @default 0.05 */
  readonly capacityGapMax?: number;
  /**
   * Epochs that must remain after an epoch boundary for a germination there (by the
   * packet's `epochs_planned`; a run that does not say is open-ended): a seed grafted at
   * the last boundary has no steps left to train and only adds parameters. @default 1
   */
  readonly minEpochsLeft?: number;
  /**
   * Blueprint ids in rotation order (each used only while offered as a candidate).
   * @default the first SAFE, non-quarantined candidate of each family (by id) that fits a host site
   */
  readonly rotation?: readonly string[];
}

/** {@link HeuristicPolicyOptions} after defaults and validation. */
export interface ResolvedHeuristicPolicyOptions {
  readonly version: string;
  readonly plateauRelativeImprovement: number;
  readonly stabilizationEpochs: number;
  readonly plateauEpochsToGerminate: number;
  readonly minEpochs: number;
  readonly maxSeeds: number;
  readonly pruneAfterEpochs: number;
  readonly pruneAccuracyDrop: number;
  readonly minPruneAgeEpochs: number;
  readonly embargoEpochs: number;
  readonly penaltyOnCull: number;
  readonly penaltyDecayPerEpoch: number;
  readonly penaltySkipThreshold: number;
  readonly capacityGrowth: boolean;
  readonly capacityMinEpochs: number;
  readonly capacityGapMax: number;
  readonly minEpochsLeft: number;
  /** Undefined: derived from the candidates on each germination. */
  readonly rotation: readonly string[] | undefined;
}

/** Defaults of {@link HeuristicPolicyOptions} (anchor §1 "Tamiyo heuristic controller"). */
export const HEURISTIC_POLICY_DEFAULTS = Object.freeze({
  version: 'heuristic-v1',
  plateauRelativeImprovement: 0.03,
  stabilizationEpochs: 3,
  plateauEpochsToGerminate: 3,
  minEpochs: 5,
  maxSeeds: 1,
  pruneAfterEpochs: 5,
  pruneAccuracyDrop: 0.02,
  minPruneAgeEpochs: 2,
  embargoEpochs: 5,
  penaltyOnCull: 2.0,
  penaltyDecayPerEpoch: 0.5,
  penaltySkipThreshold: 3.0,
  capacityGrowth: true,
  capacityMinEpochs: 1,
  capacityGapMax: 0.05,
  minEpochsLeft: 1,
});

const INTEGER_FIELDS = [
  'stabilizationEpochs',
  'plateauEpochsToGerminate',
  'minEpochs',
  'pruneAfterEpochs',
  'minPruneAgeEpochs',
  'embargoEpochs',
  'capacityMinEpochs',
  'minEpochsLeft',
] as const;

const NUMBER_FIELDS = [
  'plateauRelativeImprovement',
  'pruneAccuracyDrop',
  'penaltyOnCull',
  'penaltySkipThreshold',
  'capacityGapMax',
] as const;

/** Merges `options` over the defaults and validates; throws INVALID_ARGUMENT naming the field. */
export function resolveHeuristicPolicyOptions(options: HeuristicPolicyOptions = {}): ResolvedHeuristicPolicyOptions {
  const d = HEURISTIC_POLICY_DEFAULTS;
  const resolved: ResolvedHeuristicPolicyOptions = {
    version: options.version ?? d.version,
    plateauRelativeImprovement: options.plateauRelativeImprovement ?? d.plateauRelativeImprovement,
    stabilizationEpochs: options.stabilizationEpochs ?? d.stabilizationEpochs,
    plateauEpochsToGerminate: options.plateauEpochsToGerminate ?? d.plateauEpochsToGerminate,
    minEpochs: options.minEpochs ?? d.minEpochs,
    maxSeeds: options.maxSeeds ?? d.maxSeeds,
    pruneAfterEpochs: options.pruneAfterEpochs ?? d.pruneAfterEpochs,
    pruneAccuracyDrop: options.pruneAccuracyDrop ?? d.pruneAccuracyDrop,
    minPruneAgeEpochs: options.minPruneAgeEpochs ?? d.minPruneAgeEpochs,
    embargoEpochs: options.embargoEpochs ?? d.embargoEpochs,
    penaltyOnCull: options.penaltyOnCull ?? d.penaltyOnCull,
    penaltyDecayPerEpoch: options.penaltyDecayPerEpoch ?? d.penaltyDecayPerEpoch,
    penaltySkipThreshold: options.penaltySkipThreshold ?? d.penaltySkipThreshold,
    capacityGrowth: options.capacityGrowth ?? d.capacityGrowth,
    capacityMinEpochs: options.capacityMinEpochs ?? d.capacityMinEpochs,
    capacityGapMax: options.capacityGapMax ?? d.capacityGapMax,
    minEpochsLeft: options.minEpochsLeft ?? d.minEpochsLeft,
    rotation: options.rotation === undefined ? undefined : Object.freeze([...options.rotation]),
  };
  const check = optionChecks('HeuristicPolicyOptions');
  if (resolved.version.trim().length === 0) check.fail('version', 'a non-blank string', resolved.version);
  for (const field of INTEGER_FIELDS) check.integer(field, resolved[field], { min: 0 });
  check.integer('maxSeeds', resolved.maxSeeds, { min: 1 });
  if (typeof resolved.capacityGrowth !== 'boolean') check.fail('capacityGrowth', 'a boolean', resolved.capacityGrowth);
  for (const field of NUMBER_FIELDS) check.nonNegative(field, resolved[field]);
  check.number('penaltyDecayPerEpoch', resolved.penaltyDecayPerEpoch, { min: 0, max: 1 });
  if (resolved.rotation !== undefined) {
    if (resolved.rotation.length === 0) check.fail('rotation', 'at least one blueprint id', resolved.rotation);
    const seen = new Set<string>();
    for (const id of resolved.rotation) {
      if (id.trim().length === 0) check.fail('rotation', 'non-blank blueprint ids', id);
      if (seen.has(id)) check.fail('rotation', 'distinct blueprint ids', id);
      seen.add(id);
    }
  }
  return Object.freeze(resolved);
}
