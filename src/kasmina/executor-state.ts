/**
 * What the executor knows between calls: its seeds (live and retired), which seed holds
 * which site, the site embargoes, the training-loss EWMA, the step and its counters — and
 * how all of it is exported to a checkpoint, restored from one, and told as seed reports.
 */
import { ErrorCode, EsperError, isEsperError, PersistedStateError, type PersistedIssue } from '../core/index.js';
import { SeedLifecycleStage, type SeedSiteDescriptor } from '../leyline/index.js';
import type { Rng } from '../tensor/index.js';
import {
  KASMINA_STATE_SOURCE,
  KASMINA_STATE_VERSION,
  parseKasminaState,
  type KasminaSeedState,
  type KasminaState,
} from './kasmina-state.js';
import { SeedLifecycle, type LifecycleTransition } from './lifecycle.js';
import { newSeed, type Seed } from './seed.js';
import type { SeedSlotPhase } from './seed-slot.js';

const Stage = SeedLifecycleStage;

/** Smoothing of Kasmina's training-loss EWMA (about the last 20 steps). */
export const LOSS_EWMA_ALPHA = 0.1;

/**
 * One seed's story for run reports: where and when it grew, its fate (FOSSILIZED or CULLED
 * once decided, else the stage it is in), the cull reason, its last measured contribution
 * (a fraction of validation accuracy) and its full stage history.
 */
export interface SeedReport {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  readonly commandId: string;
  readonly germinatedStep: number;
  readonly fate: SeedLifecycleStage;
  readonly fateStep: number;
  /** Why the seed was culled; '' for any other fate. */
  readonly fateReason: string;
  readonly contribution?: number;
  readonly parameters: number;
  readonly history: readonly LifecycleTransition[];
}

/** Counters of the executor that a checkpoint keeps. */
export interface ExecutorCounters {
  commandsApplied: number;
  gateFailures: number;
  illegalTransitions: number;
  isolationChecks: number;
  seedsCulled: number;
  seedsFossilized: number;
}

/** Stages in which a seed is alive and may be culled. */
export const ACTIVE_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  Stage.SEED_STAGE_GERMINATED,
  Stage.SEED_STAGE_TRAINING,
  Stage.SEED_STAGE_BLENDING,
  Stage.SEED_STAGE_SHADOWING,
  Stage.SEED_STAGE_PROBATIONARY,
]);

/** Stages in which a seed's output reaches the host, so its contribution can be measured. */
export const MEASURED_STAGES: ReadonlySet<SeedLifecycleStage> = new Set([
  Stage.SEED_STAGE_BLENDING,
  Stage.SEED_STAGE_SHADOWING,
  Stage.SEED_STAGE_PROBATIONARY,
  Stage.SEED_STAGE_FOSSILIZED,
]);

/** The executor's seeds, sites and counters. */
export class ExecutorState {
  /** Live seeds by id (retired ones are reported from {@link #retired}). */
  readonly seeds = new Map<string, Seed>();
  /** Site id → seed id of the seed occupying it (every stage but a retired DORMANT). */
  readonly occupancy = new Map<string, string>();
  /** Site id → step until which it is embargoed. */
  readonly embargo = new Map<string, number>();
  readonly counters: ExecutorCounters = {
    commandsApplied: 0,
    gateFailures: 0,
    illegalTransitions: 0,
    isolationChecks: 0,
    seedsCulled: 0,
    seedsFossilized: 0,
  };
  step = 0;
  epoch = 0;
  /**
   * The run's executor stream (`ExecutorContext.rng`) of the call in progress, set by every
   * `apply` and `advance`: what a module draws when grafted (`SeedModule.graftInit`) comes
   * from it. The trainer owns the stream and saves it in checkpoints; it is not exported here.
   */
  rng: Rng | undefined;
  /** Reports of retired seeds, oldest first. */
  readonly #retired: SeedReport[] = [];
  /** EWMA of the training loss over steps (α = {@link LOSS_EWMA_ALPHA}); one batch is too noisy for G2. */
  #lossEwma: number | undefined;

  /** The training-loss EWMA, undefined before the first finite loss. */
  get lossEwma(): number | undefined {
    return this.#lossEwma;
  }

  /** Folds one step's training loss into the EWMA (non-finite losses are skipped). */
  recordLoss(loss: number | undefined): void {
    if (loss === undefined || !Number.isFinite(loss)) return;
    this.#lossEwma = this.#lossEwma === undefined ? loss : this.#lossEwma + LOSS_EWMA_ALPHA * (loss - this.#lossEwma);
  }

  /** Live seeds in the order they were germinated. */
  live(): Seed[] {
    return [...this.seeds.values()];
  }

  /** Takes a seed that was reset or terminated out of the live set, keeping its report. */
  retire(seed: Seed): void {
    this.#retired.push(reportOf(seed));
    this.seeds.delete(seed.seedId);
  }

  /** Every seed held so far, retired ones first, each with its fate. */
  seedReports(): readonly SeedReport[] {
    return [...this.#retired, ...this.live().map(reportOf)];
  }

  /** The checkpointed form of this state (see {@link KasminaState}). */
  export(): KasminaState {
    return {
      version: KASMINA_STATE_VERSION,
      step: this.step,
      epoch: this.epoch,
      ...(this.#lossEwma === undefined ? {} : { lossEwma: this.#lossEwma }),
      embargo: [...this.embargo.entries()],
      counters: { ...this.counters },
      seeds: this.live().map(exportSeed),
      retired: this.#retired.map((report) => ({ ...report, history: [...report.history] })),
    };
  }

  /**
   * Loads a checkpointed state into this (empty) one and returns the restored seeds; their
   * kernels are the caller's to re-attach. Nothing changes when it throws.
   * @throws PersistedStateError `KASMINA_STATE_INVALID` naming every bad path: a value that
   *   does not fit the schema, or else every seed at a site the host does not have and every
   *   impossible stage history;
   *   `INVALID_STATE` when seeds are held already.
   */
  restore(value: unknown, sites: ReadonlyMap<string, SeedSiteDescriptor>, epoch: number): RestoredSeed[] {
    if (this.seeds.size > 0 || this.#retired.length > 0) {
      throw new EsperError(ErrorCode.INVALID_STATE, 'Kasmina restores state only before it holds seeds');
    }
    const saved = parseKasminaState(value);
    const issues: PersistedIssue[] = [];
    const restored = saved.seeds.flatMap((s, index): RestoredSeed[] => {
      const site = sites.get(s.siteId);
      if (site === undefined) issues.push({ path: `$.seeds[${index}].siteId`, message: `the host has no site ${s.siteId}` });
      let lifecycle: SeedLifecycle;
      try {
        lifecycle = SeedLifecycle.replay(s.history);
      } catch (error) {
        if (!isEsperError(error, ErrorCode.KASMINA_ILLEGAL_TRANSITION)) throw error;
        issues.push({ path: `$.seeds[${index}].history`, message: error.message });
        return [];
      }
      return site === undefined ? [] : [{ seed: restoreSeed(s, site, lifecycle), attached: s.kernel.attached, phase: s.kernel.phase }];
    });
    if (issues.length > 0) throw new PersistedStateError(KASMINA_STATE_SOURCE, issues);
    this.step = saved.step;
    this.epoch = epoch;
    this.#lossEwma = saved.lossEwma;
    for (const [site, until] of saved.embargo) this.embargo.set(site, until);
    Object.assign(this.counters, saved.counters);
    this.#retired.push(...saved.retired);
    for (const { seed } of restored) {
      this.seeds.set(seed.seedId, seed);
      if (!seed.fate.retire) this.occupancy.set(seed.siteId, seed.seedId);
    }
    return restored;
  }
}

/** A seed read back from a checkpoint, and how its kernel was grafted then. */
export interface RestoredSeed {
  readonly seed: Seed;
  /** It was grafted: its kernel must be re-fetched and re-attached. */
  readonly attached: boolean;
  readonly phase: SeedSlotPhase;
}

/** The report of one seed as it stands. */
export function reportOf(seed: Seed): SeedReport {
  const history = seed.lifecycle.history.map((t) => ({ from: t.from, to: t.to, step: t.step }));
  const decided =
    history.find((t) => t.to === Stage.SEED_STAGE_FOSSILIZED) ?? history.find((t) => t.to === Stage.SEED_STAGE_CULLED) ?? history.at(-1);
  return {
    seedId: seed.seedId,
    siteId: seed.siteId,
    blueprintId: seed.blueprintId,
    commandId: seed.commandId,
    germinatedStep: history[0]?.step ?? 0,
    fate: decided?.to ?? seed.lifecycle.stage,
    fateStep: decided?.step ?? 0,
    fateReason: decided?.to === Stage.SEED_STAGE_CULLED ? seed.fate.cullReason : '',
    ...(seed.contribution.value === undefined ? {} : { contribution: seed.contribution.value }),
    parameters: seed.kernel.parameters,
    history,
  };
}

function exportSeed(seed: Seed): KasminaSeedState {
  const { progress, gradients, contribution } = seed;
  return {
    seedId: seed.seedId,
    siteId: seed.siteId,
    blueprintId: seed.blueprintId,
    commandId: seed.commandId,
    germinatedEpoch: seed.germinatedEpoch,
    history: seed.lifecycle.history.map((t) => ({ from: t.from, to: t.to, step: t.step })),
    kernel: {
      attached: seed.kernel.slot !== undefined,
      phase: seed.kernel.slot?.phase ?? 'isolated',
      latencyMs: seed.kernel.latencyMs,
      parameters: seed.kernel.parameters,
    },
    blend: { plan: { ...seed.blend.plan, alphaVec: [...seed.blend.plan.alphaVec] }, alpha: seed.blend.alpha, steps: seed.blend.steps },
    progress: {
      activeSteps: progress.activeSteps,
      paused: progress.paused,
      ...(progress.lossAtGermination === undefined ? {} : { lossAtGermination: progress.lossAtGermination }),
    },
    gradients: {
      sum: gradients.sum,
      count: gradients.count,
      finite: gradients.finite,
      last: Number.isFinite(gradients.last) ? gradients.last : null,
    },
    contribution: { ...(contribution.value === undefined ? {} : { value: contribution.value }), step: contribution.step },
    isolation: { ...seed.isolation },
    fate: { ...seed.fate },
  };
}

function restoreSeed(s: KasminaSeedState, site: SeedSiteDescriptor, lifecycle: SeedLifecycle): Seed {
  const seed = newSeed({
    seedId: s.seedId,
    siteId: s.siteId,
    site,
    blueprintId: s.blueprintId,
    commandId: s.commandId,
    germinatedEpoch: s.germinatedEpoch,
    plan: Object.freeze({ ...s.blend.plan, alphaVec: Object.freeze([...s.blend.plan.alphaVec]) }),
    lossAtGermination: s.progress.lossAtGermination,
    lifecycle,
  });
  seed.kernel.latencyMs = s.kernel.latencyMs;
  seed.kernel.parameters = s.kernel.parameters;
  Object.assign(seed.blend, { alpha: s.blend.alpha, steps: s.blend.steps });
  Object.assign(seed.progress, { activeSteps: s.progress.activeSteps, paused: s.progress.paused });
  Object.assign(seed.gradients, { ...s.gradients, last: s.gradients.last ?? Number.NaN });
  Object.assign(seed.contribution, { value: s.contribution.value, step: s.contribution.step });
  Object.assign(seed.isolation, s.isolation);
  Object.assign(seed.fate, s.fate);
  return seed;
}
