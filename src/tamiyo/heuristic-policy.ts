/**
 * Tamiyo's rule-based baseline policy (anchor §1 "Tamiyo heuristic controller"): waits for
 * the host's validation accuracy to plateau, germinates one seed at a time from a
 * blueprint rotation, and culls seeds that do not pay their way. The rules, their order
 * and the departures from the anchor are in docs/architecture.md (Tamiyo); the option
 * defaults in `heuristic-options.ts`.
 *
 * Epoch-boundary calls only decide (per-step calls propose WAIT); an epoch packet that is
 * not after the last evaluated one (a repeat, or a rewind after a restore) proposes WAIT
 * and changes nothing. Deterministic: the same packets give the same proposals; seed ids
 * are `<siteId>#<n>`, `n` counting germinations and skipping ids already present.
 */
import { familyById } from '../karn/index.js';
import { BlueprintTier, SeedLifecycleStage, SeedSiteKind, type SeedSiteDescriptor, type SystemStatePacket } from '../leyline/index.js';
import { PolicyAction } from './gnn-config.js';
import type { BlueprintCandidate } from './candidates.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';
import { DecisionKind, idOrUndefined, toId } from './decision.js';
import { BUSY_STAGES, CULL_PATH_STAGES, LIVE_STAGES } from './stages.js';
import { resolveHeuristicPolicyOptions, type HeuristicPolicyOptions, type ResolvedHeuristicPolicyOptions } from './heuristic-options.js';

const S = SeedLifecycleStage;

/** Seeds the heuristic may cull. */
const CULLABLE_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  S.SEED_STAGE_TRAINING,
  S.SEED_STAGE_BLENDING,
  S.SEED_STAGE_SHADOWING,
  S.SEED_STAGE_PROBATIONARY,
]);

/** Penalties below this are forgotten (keeps the state small). */
const PENALTY_FLOOR = 0.01;

/** Accuracies travel as float32; comparisons against thresholds allow this much. */
const FLOAT32_TOLERANCE = 1e-6;

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
  readonly stepDecisions = false;
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
    const cull = this.#cull(epoch, accuracy);
    if (cull !== undefined) return cull;
    const planned = packet.metrics?.epochsPlanned ?? 0;
    const left = planned === 0 ? Number.POSITIVE_INFINITY : planned - (epoch + 1);
    if (left < this.#options.minEpochsLeft)
      return this.#wait(`${Math.max(0, left)} epoch(s) left, a seed needs ${this.#options.minEpochsLeft}`);
    return this.#growCapacity(context, epoch, accuracy) ?? this.#germinate(context, epoch, accuracy);
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
      if (state.seedId.trim().length === 0) continue;
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
      const culled = CULL_PATH_STAGES.has(state.stage) || (wasLive && state.stage === S.SEED_STAGE_DORMANT);
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
    const siteId = idOrUndefined(track.siteId);
    const blueprintId = idOrUndefined(track.blueprintId);
    return {
      decision: {
        kind: DecisionKind.CULL,
        seedId: toId(track.seedId, 'seed id'),
        ...(siteId === undefined ? {} : { siteId }),
        ...(blueprintId === undefined ? {} : { blueprintId }),
      },
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
        const plateau = this.#plateauEpochs;
        return this.#germinateAt(site, blueprintId, epoch, accuracy, states, `after ${plateau} plateau epochs`);
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
    why: string,
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
    this.#plateauEpochs = 0;
    return {
      decision: {
        kind: DecisionKind.GERMINATE,
        seedId: toId(seedId, 'seed id'),
        siteId: toId(site.siteId, 'site id'),
        blueprintId: toId(blueprintId, 'blueprint id'),
      },
      policyVersion: this.version,
      actionId: PolicyAction.GERMINATE,
      notes: `germinate ${blueprintId} at ${site.siteId} ${why}`,
    };
  }

  /**
   * Capacity growth (see {@link HeuristicPolicyOptions.capacityGrowth}): the host does not
   * overfit, so capacity rather than data limits it — widen a hidden layer now, the
   * earlier the better, instead of waiting for a validation plateau. Free WIDEN sites by
   * the packet's growth signal, largest first (GradMax's criterion: the gradient norm new
   * units would receive there), then as {@link #freeSites} orders them; blueprints by id,
   * below the penalty threshold.
   */
  #growCapacity(context: PolicyContext, epoch: number, accuracy: number): PolicyProposal | undefined {
    const o = this.#options;
    if (!o.capacityGrowth || epoch + 1 < o.capacityMinEpochs) return undefined;
    const { trainingLoss, validationLoss, seedStates } = context.packet;
    if (!(trainingLoss > 0) || !Number.isFinite(validationLoss)) return undefined;
    const gap = (validationLoss - trainingLoss) / trainingLoss;
    if (gap > o.capacityGapMax) return undefined;
    if (seedStates.filter((s) => LIVE_STAGES.has(s.stage)).length >= o.maxSeeds) return undefined;
    const offered = [...availableCandidates(context.candidates).values()].sort((a, b) =>
      a.descriptor.blueprintId < b.descriptor.blueprintId ? -1 : 1,
    );
    const signals = widenSignals(context.packet);
    const sites = this.#freeSites(context, epoch).filter((site) => site.kind === SeedSiteKind.WIDEN);
    // Stable: sites with equal (or no) signal keep the depth order.
    sites.sort((a, b) => (signals.get(b.siteId) ?? -1) - (signals.get(a.siteId) ?? -1));
    for (const site of sites) {
      const candidate = offered.find((c) => fits(c, site) && this.penaltyOf(c.descriptor.blueprintId) <= o.penaltySkipThreshold);
      if (candidate === undefined) continue;
      const signal = signals.get(site.siteId);
      const where = signal === undefined ? '' : `, widen gradient ${signal.toExponential(2)}`;
      const why = `for capacity: validation loss ${validationLoss.toFixed(4)} vs training ${trainingLoss.toFixed(4)} (gap ${(100 * gap).toFixed(1)} %${where})`;
      return this.#germinateAt(site, candidate.descriptor.blueprintId, epoch, accuracy, seedStates, why);
    }
    return undefined;
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

/** The packet's finite, non-negative WIDEN growth signals by site id (anything else is ignored). */
function widenSignals(packet: SystemStatePacket): Map<string, number> {
  const out = new Map<string, number>();
  for (const { siteId, widenGradientNorm } of packet.siteSignals) {
    if (Number.isFinite(widenGradientNorm) && widenGradientNorm >= 0 && !out.has(siteId)) out.set(siteId, widenGradientNorm);
  }
  return out;
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
