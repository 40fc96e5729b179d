/** Tolaria builds its trainer from the settings (`create-trainer.ts`). */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ErrorCode, loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { createTrainer, isPathSafeRunId, runCheckpointDir, trainerOptionsFromSettings } from '../../src/tolaria/create-trainer.js';
import { MemoryEmergencySink } from './fixtures/fakes.js';
import { trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'run-settings', hostPrefix: 'set' });

describe('createTrainer', () => {
  it('maps settings.tolaria onto the trainer: deadlines, budgets, rollback and emergency when enabled', () => {
    const settings = loadSettings({
      env: {
        ESPER_TOLARIA_TAMIYO_TIMEOUT_MS: '1500',
        ESPER_TOLARIA_KASMINA_TIMEOUT_MS: '900',
        ESPER_TOLARIA_EPOCH_BUDGET_MS: '400',
        ESPER_TOLARIA_HOOK_BUDGET_MS: '70',
        ESPER_TOLARIA_ROLLBACK_ENABLED: 'true',
        ESPER_TOLARIA_ROLLBACK_SNAPSHOT_STEPS: '4',
        ESPER_TOLARIA_ROLLBACK_FAST_CACHE_MAX_MB: '8',
        ESPER_TOLARIA_ROLLBACK_DEADLINE_MS: '5000',
        ESPER_TOLARIA_EMERGENCY_ENABLED: 'true',
        ESPER_TOLARIA_EMERGENCY_L4_FAILED_EPOCHS: '5',
        ESPER_TOLARIA_EMERGENCY_BYPASS_MAX_PER_MIN: '10',
        ESPER_CORE_LATENCY_BUDGETS: 'observe',
      },
    });
    const trainer = createTrainer(settings, {
      trainingRunId: 'run-settings',
      host: kit.host(),
      dataset: kit.dataset(),
      epochs: 1,
      telemetry: new MemoryTelemetrySink(),
      worker: kit.worker(),
      emergencySink: new MemoryEmergencySink(),
    });
    kit.defer(() => trainer.dispose());
    expect(trainer.options).toMatchObject({
      controllerDeadlineMs: 1500,
      executorDeadlineMs: 900,
      epochBudgetMs: 400,
      hookBudgetMs: 70,
      latencyBudgets: 'observe',
      rollback: { snapshotEverySteps: 4, fastCacheMaxBytes: 8 * 1024 * 1024, fullDeadlineMs: 5000 },
      emergency: { failedEpochsToHalt: 5, maxRepeatsPerMinute: 10 },
    });
  });

  it('leaves rollback and emergency off by default, and needs an emergency sink when the protocol is on', () => {
    const deps = {
      trainingRunId: 'run-settings',
      host: kit.host(),
      dataset: kit.dataset(),
      epochs: 1,
      telemetry: new MemoryTelemetrySink(),
    };
    const options = trainerOptionsFromSettings(loadSettings({ env: {} }), { ...deps, emergencySink: new MemoryEmergencySink() });
    expect(options.rollback).toBeUndefined();
    expect(options.emergency).toBeUndefined();
    expect(options).toMatchObject({
      controllerDeadlineMs: 2000,
      executorDeadlineMs: 2000,
      epochBudgetMs: 250,
      hookBudgetMs: 50,
      latencyBudgets: 'enforce',
    });
    const on = loadSettings({ env: { ESPER_TOLARIA_EMERGENCY_ENABLED: 'true' } });
    expect(() => trainerOptionsFromSettings(on, deps)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });
});

describe('runCheckpointDir', () => {
  it('gives each run its own directory under the var dir, and refuses a run id that is not one path segment', () => {
    const settings = loadSettings({ env: { ESPER_STORAGE_VAR_DIR: '/srv/esper' } });
    expect(runCheckpointDir(settings, 'train-20261206-1')).toBe(path.join('/srv/esper', 'runs', 'train-20261206-1', 'checkpoints'));
    for (const bad of ['../etc', 'a/b', '', '.hidden', '-flag', 'a b']) {
      expect(isPathSafeRunId(bad)).toBe(false);
      expect(() => runCheckpointDir(settings, bad)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
  });
});
