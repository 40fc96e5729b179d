/**
 * Tamiyo's rule-based baseline policy (anchor §1 "Tamiyo heuristic controller"): waits for
 * the host to stabilise, germinates one seed at a time from a blueprint rotation when
 * validation accuracy plateaus, and culls seeds that do not pay their way.
 *
 * Rules, evaluated on epoch-boundary calls only (per-step calls always propose WAIT):
 * - **Plateau and stabilisation.** An epoch is a plateau epoch when validation accuracy
 *   improved by less than `plateauRelativeImprovement` (3 %) relative to the previous
 *   epoch. `stabilizationEpochs` (3) consecutive plateau epochs latch "stabilised" for the
 *   rest of the run.
 * - **Cull** (checked first; one seed per call) a seed in TRAINING…PROBATIONARY when, in
 *   this order: it is PROBATIONARY with a negative measured `counterfactual_contribution`;
 *   or it is ≥ `minPruneAgeEpochs` old and accuracy fell ≥ `pruneAccuracyDrop` (0.02, i.e.
 *   2 points) below its value at germination; or it is that old and accuracy has not beaten
 *   its best since germination for `pruneAfterEpochs` (5) epochs. Ties: lowest seed id.
 * - **Germinate** when stabilised, after ≥ `plateauEpochsToGerminate` (3) consecutive
 *   plateau epochs, once ≥ `minEpochs` (5) epochs are complete, with fewer than `maxSeeds`
 *   (1) live seeds (GERMINATED…PROBATIONARY). Site: the deepest free site (highest
 *   `depth`, then host order); a site is busy while a seed there is live, FOSSILIZED,
 *   CULLED, EMBARGOED or RESETTING, and for `embargoEpochs` (5) epochs after one of its
 *   seeds was culled. Blueprint: the next in the rotation that is offered, fits the site
 *   and carries a penalty ≤ `penaltySkipThreshold` (3.0). The plateau count restarts.
 * - **Penalties.** Each culled seed (by this policy or by Kasmina's gates, seen as CULLED,
 *   EMBARGOED, RESETTING, or DORMANT after being live) adds `penaltyOnCull` (2.0) to its
 *   blueprint, once per seed; penalties decay ×`penaltyDecayPerEpoch` (0.5) per epoch and
 *   are forgotten below 0.01.
 * - **Fossilization** is Kasmina's G4 gate (counterfactual ≥ 1 %); the heuristic never
 *   proposes it, it records each seed's latest contribution (see {@link snapshot}).
 *
 * `current_epoch` is Tolaria's 0-based index, so epoch `e`'s packet completes `e + 1`
 * epochs. An epoch packet whose epoch is not after the last evaluated one (a repeat, or a
 * rewind after a restore) proposes WAIT and changes nothing. Deterministic: the same
 * packets give the same proposals; seed ids are `<siteId>#<n>`, `n` counting germinations
 * and skipping ids already present.
 *
 * Departures from the anchor's heuristic: accuracy (not loss) drives the latch, as the
 * controller reads `validation_accuracy`; the default rotation is derived from the
 * catalog (first SAFE blueprint of each family, by id, fitting some host site) instead of
 * the fixed conv_light/conv_heavy/attention/norm/depthwise names, which this catalog lacks.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { familyById } from '../karn/index.js';
import { BlueprintTier, SeedLifecycleStage, type SeedSiteDescriptor, type SystemStatePacket } from '../leyline/index.js';
import { PolicyAction } from './gnn.js';
import type { BlueprintCandidate } from './graph-builder.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';
import { DecisionKind } from './risk-engine.js';

const S = SeedLifecycleStage;

/** Seeds that count against `maxSeeds`. */
const LIVE_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  S.SEED_STAGE_GERMINATED,
  S.SEED_STAGE_TRAINING,
  S.SEED_STAGE_BLENDING,
  S.SEED_STAGE_SHADOWING,
  S.SEED_STAGE_PROBATIONARY,
]);

/** Seeds the heuristic may cull. */
const CULLABLE_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  S.SEED_STAGE_TRAINING,
  S.SEED_STAGE_BLENDING,
  S.SEED_STAGE_SHADOWING,
  S.SEED_STAGE_PROBATIONARY,
]);

/** Stages on the cull path (CULLED → EMBARGOED → RESETTING → DORMANT). */
const CULLED_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([S.SEED_STAGE_CULLED, S.SEED_STAGE_EMBARGOED, S.SEED_STAGE_RESETTING]);

/** A seed in one of these stages keeps its site busy. */
const BUSY_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([...LIVE_STAGES, ...CULLED_STAGES, S.SEED_STAGE_FOSSILIZED]);

/** Penalties below this are forgotten (keeps the state small). */
const PENALTY_FLOOR = 0.01;

/** Accuracies travel as float32; comparisons against thresholds allow this much. */
const FLOAT32_TOLERANCE = 1e-6;

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
});

const INTEGER_FIELDS = [
  'stabilizationEpochs',
  'plateauEpochsToGerminate',
  'minEpochs',
  'pruneAfterEpochs',
  'minPruneAgeEpochs',
  'embargoEpochs',
] as const;

const NUMBER_FIELDS = ['plateauRelativeImprovement', 'pruneAccuracyDrop', 'penaltyOnCull', 'penaltySkipThreshold'] as const;

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
    rotation: options.rotation === undefined ? undefined : Object.freeze([...options.rotation]),
  };
  if (resolved.version.trim().length === 0) throw invalidOption('version', 'expected a non-blank string');
  for (const field of INTEGER_FIELDS) {
    if (!Number.isSafeInteger(resolved[field]) || resolved[field] < 0) {
      throw invalidOption(field, `expected an integer ≥ 0, got ${resolved[field]}`);
    }
  }
  if (!Number.isSafeInteger(resolved.maxSeeds) || resolved.maxSeeds < 1) {
    throw invalidOption('maxSeeds', `expected an integer ≥ 1, got ${resolved.maxSeeds}`);
  }
  for (const field of NUMBER_FIELDS) {
    if (!Number.isFinite(resolved[field]) || resolved[field] < 0) {
      throw invalidOption(field, `expected a finite number ≥ 0, got ${resolved[field]}`);
    }
  }
  const decay = resolved.penaltyDecayPerEpoch;
  if (!(decay >= 0 && decay <= 1)) throw invalidOption('penaltyDecayPerEpoch', `expected a number in [0, 1], got ${decay}`);
  if (resolved.rotation !== undefined) {
    if (resolved.rotation.length === 0) throw invalidOption('rotation', 'expected at least one blueprint id');
    const seen = new Set<string>();
    for (const id of resolved.rotation) {
      if (id.trim().length === 0) throw invalidOption('rotation', 'blueprint ids must be non-blank');
      if (seen.has(id)) throw invalidOption('rotation', `duplicate blueprint id ${id}`);
      seen.add(id);
    }
  }
  return Object.freeze(resolved);
}

/** Why a seed is culled, most severe first. */
export const HeuristicCullReason = {
  NEGATIVE_COUNTERFACTUAL: 'negative_counterfactual',
  ACCURACY_DROP: 'accuracy_drop',
  NO_IMPROVEMENT: 'no_improvement',
} as const;

/** Union of {@link HeuristicCullReason} values. */
export type HeuristicCullReason = (typeof HeuristicCullReason)[keyof typeof HeuristicCullReason];

const CULL_SEVERITY: Readonly<Record<HeuristicCullReason, number>> = {
  negative_counterfactual: 0,
  accuracy_drop: 1,
  no_improvement: 2,
};

/** What the heuristic knows about one seed. */
export interface HeuristicSeedRecord {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  /** Stage in the latest packet (GERMINATED while the germination is unconfirmed). */
  readonly stage: SeedLifecycleStage;
  /** Epoch of the germination (or of the first sighting of a seed this policy did not grow). */
  readonly germinatedEpoch: number;
  readonly accuracyAtGermination: number;
  /** Best validation accuracy since germination. */
  readonly bestAccuracy: number;
  /** Epoch that last beat `bestAccuracy` (the germination epoch at first). */
  readonly lastImprovementEpoch: number;
  /** Latest measured counterfactual contribution, when any. */
  readonly contribution?: number;
  /** Its cull has been charged to the blueprint. */
  readonly penalised: boolean;
  /** Proposed by this policy, not yet seen in a packet. */
  readonly pending: boolean;
}

/** The heuristic's internal state (for the run record). */
export interface HeuristicPolicySnapshot {
  readonly version: string;
  /** Last evaluated epoch, when any. */
  readonly lastEpoch?: number;
  readonly lastAccuracy?: number;
  /** Consecutive plateau epochs (restarts on germination). */
  readonly plateauEpochs: number;
  /** The stabilisation latch. */
  readonly stabilized: boolean;
  /** Position in the rotation of the next blueprint to try. */
  readonly rotationIndex: number;
  /** Germinations proposed so far. */
  readonly germinations: number;
  /** Proposed germinations whose seed never showed up in the next epoch's packet. */
  readonly unconfirmedGerminations: number;
  /** Current penalties, sorted by blueprint id. */
  readonly penalties: readonly { readonly blueprintId: string; readonly penalty: number }[];
  /** Sites closed after a cull, sorted by site id: open again from `untilEpoch`. */
  readonly siteEmbargoes: readonly { readonly siteId: string; readonly untilEpoch: number }[];
  /** Tracked seeds, sorted by seed id. */
  readonly seeds: readonly HeuristicSeedRecord[];
}

type SeedTrack = { -readonly [K in keyof HeuristicSeedRecord]: HeuristicSeedRecord[K] };

/** The rule-based Tamiyo policy. Calls must come in order, one at a time. */
export class HeuristicPolicy implements TamiyoPolicy {
  readonly name = 'heuristic';
  readonly version: string;
  readonly #options: ResolvedHeuristicPolicyOptions;
  #lastEpoch: number | undefined;
  #lastAccuracy: number | undefined;
  #plateauEpochs = 0;
  #stabilized = false;
  #rotationIndex = 0;
  #germinations = 0;
  #unconfirmed = 0;
  readonly #penalties = new Map<string, number>();
  /** Site id → first epoch at which the site is open again. */
  readonly #embargoes = new Map<string, number>();
  readonly #seeds = new Map<string, SeedTrack>();

  constructor(options: HeuristicPolicyOptions = {}) {
    this.#options = resolveHeuristicPolicyOptions(options);
    this.version = this.#options.version;
  }

  /** The resolved options (log them once at start). */
  get options(): ResolvedHeuristicPolicyOptions {
    return this.#options;
  }

  /** Proposes one decision; see the module comment for the rules. */
  propose(context: PolicyContext): PolicyProposal {
    if (!context.epochBoundary) return this.#wait('per-step call');
    const { packet } = context;
    const epoch = packet.currentEpoch;
    const accuracy = packet.validationAccuracy;
    if (!Number.isFinite(accuracy)) return this.#wait('validation accuracy is not finite');
    if (this.#lastEpoch !== undefined && epoch <= this.#lastEpoch) {
      return this.#wait(`epoch ${epoch} is not after the last evaluated epoch ${this.#lastEpoch}`);
    }
    this.#decayPenalties(this.#lastEpoch === undefined ? 0 : epoch - this.#lastEpoch);
    this.#updatePlateau(accuracy);
    this.#lastEpoch = epoch;
    this.#lastAccuracy = accuracy;
    this.#observeSeeds(packet, epoch, accuracy);
    return this.#cull(epoch, accuracy) ?? this.#germinate(context, epoch, accuracy);
  }

  /** A copy of the internal state. */
  snapshot(): HeuristicPolicySnapshot {
    const byKey = <T>(entries: Iterable<[string, T]>): [string, T][] => [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      version: this.version,
      ...(this.#lastEpoch === undefined ? {} : { lastEpoch: this.#lastEpoch }),
      ...(this.#lastAccuracy === undefined ? {} : { lastAccuracy: this.#lastAccuracy }),
      plateauEpochs: this.#plateauEpochs,
      stabilized: this.#stabilized,
      rotationIndex: this.#rotationIndex,
      germinations: this.#germinations,
      unconfirmedGerminations: this.#unconfirmed,
      penalties: byKey(this.#penalties).map(([blueprintId, penalty]) => ({ blueprintId, penalty })),
      siteEmbargoes: byKey(this.#embargoes).map(([siteId, untilEpoch]) => ({ siteId, untilEpoch })),
      seeds: byKey(this.#seeds).map(([, track]) => ({ ...track })),
    };
  }

  /** Current penalty of `blueprintId` (0 when none). */
  penaltyOf(blueprintId: string): number {
    return this.#penalties.get(blueprintId) ?? 0;
  }

  // ------------------------------------------------------------------ state updates

  #decayPenalties(elapsedEpochs: number): void {
    if (elapsedEpochs <= 0) return;
    const factor = this.#options.penaltyDecayPerEpoch ** elapsedEpochs;
    for (const [id, penalty] of this.#penalties) {
      const next = penalty * factor;
      if (next < PENALTY_FLOOR) this.#penalties.delete(id);
      else this.#penalties.set(id, next);
    }
  }

  #updatePlateau(accuracy: number): void {
    const previous = this.#lastAccuracy;
    if (previous === undefined) return;
    const relative = previous > 0 ? (accuracy - previous) / previous : accuracy > previous ? Infinity : 0;
    this.#plateauEpochs = relative < this.#options.plateauRelativeImprovement ? this.#plateauEpochs + 1 : 0;
    if (this.#plateauEpochs >= this.#options.stabilizationEpochs) this.#stabilized = true;
  }

  #observeSeeds(packet: SystemStatePacket, epoch: number, accuracy: number): void {
    const present = new Set(packet.seedStates.map((s) => s.seedId));
    for (const [id, track] of this.#seeds) {
      if (present.has(id)) continue;
      if (track.pending) this.#unconfirmed += 1;
      this.#seeds.delete(id);
    }
    for (const state of packet.seedStates) {
      if (state.seedId.length === 0) continue;
      let track = this.#seeds.get(state.seedId);
      if (track === undefined) {
        // Retired seeds are of no interest unless they were being followed.
        if (!BUSY_STAGES.has(state.stage)) continue;
        track = {
          seedId: state.seedId,
          siteId: state.siteId,
          blueprintId: state.blueprintId,
          stage: state.stage,
          germinatedEpoch: epoch,
          accuracyAtGermination: accuracy,
          bestAccuracy: accuracy,
          lastImprovementEpoch: epoch,
          penalised: false,
          pending: false,
        };
        this.#seeds.set(state.seedId, track);
      }
      const wasLive = LIVE_STAGES.has(track.stage);
      track.pending = false;
      track.stage = state.stage;
      if (state.siteId.length > 0) track.siteId = state.siteId;
      if (state.blueprintId.length > 0) track.blueprintId = state.blueprintId;
      const contribution = state.metrics?.counterfactualContribution;
      if (contribution !== undefined && Number.isFinite(contribution)) track.contribution = contribution;
      if (LIVE_STAGES.has(state.stage) && accuracy > track.bestAccuracy) {
        track.bestAccuracy = accuracy;
        track.lastImprovementEpoch = epoch;
      }
      // A live seed that reappears DORMANT went through the whole cull path between packets.
      const culled = CULLED_STAGES.has(state.stage) || (wasLive && state.stage === S.SEED_STAGE_DORMANT);
      if (culled) this.#penalise(track, epoch);
      if (!BUSY_STAGES.has(state.stage)) this.#seeds.delete(state.seedId);
    }
  }

  #penalise(track: SeedTrack, epoch: number): void {
    if (track.penalised) return;
    track.penalised = true;
    if (track.blueprintId.length > 0) {
      this.#penalties.set(track.blueprintId, this.penaltyOf(track.blueprintId) + this.#options.penaltyOnCull);
    }
    if (track.siteId.length > 0) {
      const until = epoch + this.#options.embargoEpochs;
      this.#embargoes.set(track.siteId, Math.max(until, this.#embargoes.get(track.siteId) ?? 0));
    }
  }

  // ------------------------------------------------------------------ decisions

  #cull(epoch: number, accuracy: number): PolicyProposal | undefined {
    const o = this.#options;
    let chosen: { track: SeedTrack; reason: HeuristicCullReason } | undefined;
    for (const track of this.#seeds.values()) {
      if (!CULLABLE_STAGES.has(track.stage)) continue;
      const reason = this.#cullReason(track, epoch, accuracy, o);
      if (reason === undefined) continue;
      const better =
        chosen === undefined ||
        CULL_SEVERITY[reason] < CULL_SEVERITY[chosen.reason] ||
        (CULL_SEVERITY[reason] === CULL_SEVERITY[chosen.reason] && track.seedId < chosen.track.seedId);
      if (better) chosen = { track, reason };
    }
    if (chosen === undefined) return undefined;
    const { track, reason } = chosen;
    this.#penalise(track, epoch);
    return {
      decision: { kind: DecisionKind.CULL, seedId: track.seedId, siteId: track.siteId, blueprintId: track.blueprintId },
      policyVersion: this.version,
      actionId: PolicyAction.CULL,
      notes: `cull ${track.seedId} (${reason})`,
    };
  }

  #cullReason(track: SeedTrack, epoch: number, accuracy: number, o: ResolvedHeuristicPolicyOptions): HeuristicCullReason | undefined {
    if (track.stage === S.SEED_STAGE_PROBATIONARY && track.contribution !== undefined && track.contribution < 0) {
      return HeuristicCullReason.NEGATIVE_COUNTERFACTUAL;
    }
    if (epoch - track.germinatedEpoch < o.minPruneAgeEpochs) return undefined;
    if (track.accuracyAtGermination - accuracy >= o.pruneAccuracyDrop - FLOAT32_TOLERANCE) {
      return HeuristicCullReason.ACCURACY_DROP;
    }
    if (epoch - track.lastImprovementEpoch >= o.pruneAfterEpochs) return HeuristicCullReason.NO_IMPROVEMENT;
    return undefined;
  }

  #germinate(context: PolicyContext, epoch: number, accuracy: number): PolicyProposal {
    const o = this.#options;
    if (!this.#stabilized) return this.#wait('host not stabilised');
    if (this.#plateauEpochs < o.plateauEpochsToGerminate) {
      return this.#wait(`plateau ${this.#plateauEpochs}/${o.plateauEpochsToGerminate} epochs`);
    }
    if (epoch + 1 < o.minEpochs) return this.#wait(`${epoch + 1}/${o.minEpochs} epochs complete`);
    const states = context.packet.seedStates;
    const live = states.filter((s) => LIVE_STAGES.has(s.stage)).length;
    if (live >= o.maxSeeds) return this.#wait(`${live} live seed(s), at most ${o.maxSeeds}`);

    const sites = this.#freeSites(context, epoch);
    if (sites.length === 0) return this.#wait('no free site');
    const offered = availableCandidates(context.candidates);
    const rotation = o.rotation ?? defaultRotation(offered, context.host.sites);
    for (const site of sites) {
      for (let k = 0; k < rotation.length; k += 1) {
        const position = (this.#rotationIndex + k) % rotation.length;
        const blueprintId = rotation[position] as string;
        const candidate = offered.get(blueprintId);
        if (candidate === undefined || !fits(candidate, site)) continue;
        if (this.penaltyOf(blueprintId) > o.penaltySkipThreshold) continue;
        this.#rotationIndex = (position + 1) % rotation.length;
        return this.#germinateAt(site, blueprintId, epoch, accuracy, states);
      }
    }
    return this.#wait('no offered blueprint fits a free site below the penalty threshold');
  }

  #germinateAt(
    site: SeedSiteDescriptor,
    blueprintId: string,
    epoch: number,
    accuracy: number,
    states: SystemStatePacket['seedStates'],
  ): PolicyProposal {
    const taken = new Set([...states.map((s) => s.seedId), ...this.#seeds.keys()]);
    let n = this.#germinations + 1;
    while (taken.has(`${site.siteId}#${n}`)) n += 1;
    this.#germinations = n;
    const seedId = `${site.siteId}#${n}`;
    this.#seeds.set(seedId, {
      seedId,
      siteId: site.siteId,
      blueprintId,
      stage: S.SEED_STAGE_GERMINATED,
      germinatedEpoch: epoch,
      accuracyAtGermination: accuracy,
      bestAccuracy: accuracy,
      lastImprovementEpoch: epoch,
      penalised: false,
      pending: true,
    });
    const plateau = this.#plateauEpochs;
    this.#plateauEpochs = 0;
    return {
      decision: { kind: DecisionKind.GERMINATE, seedId, siteId: site.siteId, blueprintId },
      policyVersion: this.version,
      actionId: PolicyAction.GERMINATE,
      notes: `germinate ${blueprintId} at ${site.siteId} after ${plateau} plateau epochs`,
    };
  }

  /** Free sites, deepest first (ties: host order). */
  #freeSites(context: PolicyContext, epoch: number): SeedSiteDescriptor[] {
    const busy = new Set<string>();
    for (const state of context.packet.seedStates) if (BUSY_STAGES.has(state.stage)) busy.add(state.siteId);
    for (const track of this.#seeds.values()) if (track.pending) busy.add(track.siteId);
    return context.host.sites
      .map((site, order) => ({ site, order }))
      .filter(({ site }) => !busy.has(site.siteId) && epoch >= (this.#embargoes.get(site.siteId) ?? 0))
      .sort((a, b) => b.site.depth - a.site.depth || a.order - b.order)
      .map(({ site }) => site);
  }

  #wait(notes: string): PolicyProposal {
    return {
      decision: { kind: DecisionKind.WAIT },
      policyVersion: this.version,
      actionId: PolicyAction.WAIT,
      notes,
    };
  }
}

/** Offered, non-quarantined candidates by blueprint id. */
function availableCandidates(candidates: readonly BlueprintCandidate[]): Map<string, BlueprintCandidate> {
  const out = new Map<string, BlueprintCandidate>();
  for (const candidate of candidates) {
    if (candidate.quarantined === true || candidate.descriptor.quarantineOnly) continue;
    out.set(candidate.descriptor.blueprintId, candidate);
  }
  return out;
}

/** First SAFE candidate of each family (by id) that fits at least one host site. */
function defaultRotation(offered: ReadonlyMap<string, BlueprintCandidate>, sites: readonly SeedSiteDescriptor[]): string[] {
  const families = new Set<string>();
  const rotation: string[] = [];
  const ids = [...offered.keys()].sort();
  for (const id of ids) {
    const candidate = offered.get(id) as BlueprintCandidate;
    if (candidate.descriptor.tier !== BlueprintTier.SAFE) continue;
    if (families.has(candidate.descriptor.family)) continue;
    if (!sites.some((site) => fits(candidate, site))) continue;
    families.add(candidate.descriptor.family);
    rotation.push(id);
  }
  return rotation;
}

function fits(candidate: BlueprintCandidate, site: SeedSiteDescriptor): boolean {
  return familyById(candidate.descriptor.family)?.fits(site) === true;
}

function invalidOption(field: string, problem: string): EsperError {
  return new EsperError(ErrorCode.INVALID_ARGUMENT, `HeuristicPolicy option ${field}: ${problem}`, {
    details: { field },
  });
}
