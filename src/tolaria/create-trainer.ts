/**
 * Tolaria builds its own trainer from the settings: `settings.tolaria` (deadlines, budgets,
 * rollback, emergency) mapped onto {@link TrainerOptions}, with the run's collaborators
 * passed in. Callers never map settings by hand.
 */
import path from 'node:path';
import { ErrorCode, EsperError, type EsperSettings } from '../core/index.js';
import type { EmergencySink } from './emergency.js';
import { Trainer } from './trainer.js';
import type { TrainerOptions } from './trainer-options.js';

/** Trainer options that come from `settings.tolaria`. */
type SettingsOptions =
  'controllerDeadlineMs' | 'executorDeadlineMs' | 'epochBudgetMs' | 'hookBudgetMs' | 'latencyBudgets' | 'emergency' | 'rollback';

/**
 * What a run supplies besides the settings: what to train (host, dataset, epochs, batch,
 * optimizer, schedule, seed), its collaborators (controller, executor, command verifier,
 * worker, telemetry, checkpoint store) and its sinks.
 */
export interface TrainerDependencies extends Omit<TrainerOptions, SettingsOptions> {
  /** Where emergency signals go. Required when `settings.tolaria.emergency.enabled`. */
  readonly emergencySink?: EmergencySink;
}

/**
 * The trainer options of a run: `deps` plus `settings.tolaria` — `tamiyoTimeoutMs` and
 * `kasminaTimeoutMs` as the call deadlines, the epoch and hook budgets, two-tier rollback
 * when `rollback.enabled`, the emergency protocol when `emergency.enabled`.
 * @throws EsperError INVALID_ARGUMENT when the emergency protocol is on and no sink is given
 */
export function trainerOptionsFromSettings(settings: EsperSettings, deps: TrainerDependencies): TrainerOptions {
  const tolaria = settings.tolaria;
  const { emergencySink, ...run } = deps;
  if (tolaria.emergency.enabled && emergencySink === undefined) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, 'tolaria.emergency.enabled needs an emergency sink for the trainer', {
      details: { field: 'emergencySink' },
    });
  }
  return {
    ...run,
    controllerDeadlineMs: tolaria.tamiyoTimeoutMs,
    executorDeadlineMs: tolaria.kasminaTimeoutMs,
    epochBudgetMs: tolaria.epochBudgetMs,
    hookBudgetMs: tolaria.hookBudgetMs,
    latencyBudgets: settings.core.latencyBudgets,
    ...(tolaria.emergency.enabled && emergencySink !== undefined
      ? {
          emergency: {
            sink: emergencySink,
            failedEpochsToHalt: tolaria.emergency.l4FailedEpochs,
            maxRepeatsPerMinute: tolaria.emergency.bypassMaxPerMin,
          },
        }
      : {}),
    ...(tolaria.rollback.enabled
      ? {
          rollback: {
            snapshotEverySteps: tolaria.rollback.snapshotSteps,
            fastCacheMaxMb: tolaria.rollback.fastCacheMaxMb,
            fullDeadlineMs: tolaria.rollback.deadlineMs,
          },
        }
      : {}),
  };
}

/**
 * A trainer for one run, configured from the settings (see {@link trainerOptionsFromSettings}).
 * @throws as {@link trainerOptionsFromSettings} and the {@link Trainer} constructor
 */
export function createTrainer(settings: EsperSettings, deps: TrainerDependencies): Trainer {
  return new Trainer(trainerOptionsFromSettings(settings, deps));
}

/** A run id usable as one path segment: letters, digits, `.`, `_`, `-`; not starting with `.` or `-`. */
const RUN_ID_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/** Whether `runId` can name a run directory. */
export function isPathSafeRunId(runId: string): boolean {
  return RUN_ID_SEGMENT.test(runId);
}

/**
 * The checkpoint directory of run `runId`: `<storage.varDir>/runs/<run id>/checkpoints`,
 * beside the run's other records, so each run has its own.
 * @throws EsperError INVALID_ARGUMENT when the run id cannot be one path segment
 */
export function runCheckpointDir(settings: EsperSettings, runId: string): string {
  if (!isPathSafeRunId(runId)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `run id '${runId}' cannot name a run directory (letters, digits, '.', '_', '-')`, {
      details: { field: 'trainingRunId' },
    });
  }
  return path.join(settings.storage.varDir, 'runs', runId, 'checkpoints');
}
