/**
 * The seam between the study and whoever trains one arm of one seed: an {@link ArmRunner}
 * takes the task, the arm, the seed and the settings and returns an {@link ArmResult}. The
 * study runs the static arms with its own runner (`static-runner.ts`); the grown arm needs
 * Tamiyo + Kasmina + Urza composed by a composition root, which supplies its runner.
 *
 * Runs go in child processes, so runners are named by module, not passed as objects: an
 * {@link ArmRunnerModule} is a module path whose export (`createArmRunner` unless said
 * otherwise) builds the runner inside the child.
 */
import { z } from 'zod';
import type { EsperSettings } from '../core/index.js';
import { FlopBlockSchema, type FlopBlock } from './flops.js';
import type { StudyArm, TaskDefinition } from './tasks.js';

/** What one run trains. */
export interface ArmRunRequest {
  readonly task: TaskDefinition;
  readonly arm: StudyArm;
  readonly seed: number;
  readonly settings: EsperSettings;
}

/** Progress of a run, a few times per run. */
export interface ArmProgress {
  readonly step: number;
  readonly totalSteps: number;
  /** Mean training loss since the previous report. */
  readonly loss: number;
}

/** What a runner is given besides the request. */
export interface ArmRunContext {
  /** Aborts the run at a step boundary; the runner then rejects. */
  readonly signal: AbortSignal;
  /** Progress reports (must not throw). */
  readonly onProgress?: (progress: ArmProgress) => void;
}

/** A seed the grown arm germinated, and what became of it. */
export interface GrownSeed {
  readonly seedId: string;
  readonly siteId: string;
  readonly blueprintId: string;
  /** Optimizer step at which it was grafted (its compute counts from here). */
  readonly germinatedStep: number;
  /** `FOSSILIZED`, `CULLED`, or the stage it was in when the run ended. */
  readonly fate: string;
  /** Step of its fate (a culled seed's compute counts until here). */
  readonly fateStep: number;
  /** Why it was culled ('' otherwise). */
  readonly fateReason: string;
  /** Parameters it added. */
  readonly parameters: number;
  /** The compute it adds to each example's forward pass (e.g. the two dense slices of a widened layer). */
  readonly blocks: readonly FlopBlock[];
}

/** The outcome of one run. */
export interface ArmResult {
  /** Final validation accuracy (0–1) of the host as it ended; undefined for regression tasks. */
  readonly validationAccuracy?: number;
  /** Mean training loss over the run's last steps (the last 10 % of the step budget, at least one step). */
  readonly trainingLoss: number;
  /** Optimizer steps taken. */
  readonly steps: number;
  /**
   * Batches of the budget skipped after a failed step (a loss explosion or non-finite loss
   * applies nothing): `steps` + this is the budget. Absent when none.
   */
  readonly skippedSteps?: number;
  /** Parameters of the network at the end (host plus fossilized seeds). */
  readonly parameters: number;
  /** Wall time of training (data loading and set-up excluded), in milliseconds. */
  readonly trainingWallMs: number;
  /** The compute of the host the run started with. */
  readonly hostBlocks: readonly FlopBlock[];
  /** Seeds the run grew (empty for static arms). */
  readonly seeds: readonly GrownSeed[];
}

/** Trains one arm of one seed. */
export interface ArmRunner {
  /**
   * Runs the request to its step budget.
   * @throws EsperError (typed) when the run cannot be done; an abort rejects with the signal's reason
   */
  run(request: ArmRunRequest, context: ArmRunContext): Promise<ArmResult>;
}

/** A module that builds an {@link ArmRunner} in the run's child process. */
export interface ArmRunnerModule {
  /** Absolute path or `file:` URL of the module (a `.ts` module under tsx, a `.js` one from `dist`). */
  readonly module: string;
  /**
   * The export called with no arguments to build the runner (may return a promise).
   * @default 'createArmRunner'
   */
  readonly exportName?: string;
}

/** Schema of {@link GrownSeed}. */
export const GrownSeedSchema = z
  .object({
    seedId: z.string(),
    siteId: z.string(),
    blueprintId: z.string(),
    germinatedStep: z.number().int().min(0),
    fate: z.string(),
    fateStep: z.number().int().min(0),
    fateReason: z.string(),
    parameters: z.number().int().min(0),
    blocks: z.array(FlopBlockSchema),
  })
  .strict();

/** Schema of {@link ArmResult} (child messages and result files are checked with it). */
export const ArmResultSchema = z
  .object({
    validationAccuracy: z.number().min(0).max(1).optional(),
    trainingLoss: z.number(),
    steps: z.number().int().min(0),
    skippedSteps: z.number().int().min(1).optional(),
    parameters: z.number().int().min(0),
    trainingWallMs: z.number().min(0),
    hostBlocks: z.array(FlopBlockSchema),
    seeds: z.array(GrownSeedSchema),
  })
  .strict();
