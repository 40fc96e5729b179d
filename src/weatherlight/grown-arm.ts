/**
 * The study's grown arms: the task's small host trained by Tolaria with Tamiyo deciding and
 * Kasmina grafting blueprints from Urza — the signed, gated path of `esper run`, composed by
 * {@link openGrowingRun} — for the task's step budget with the task's optimizer, schedule
 * and batch (the study's own `trainTaskSteps`, as the static arms train). Tamiyo's policy is
 * the heuristic (options from the task's `controller`), or for a task with scheduled growth
 * the `ScheduledGrowthPolicy` executing the growth plan with the arm's variant blueprint, on
 * a host with one growth slot per planned growth of a layer, or a learned policy
 * (`controller.learned`: Simic's GNN from its file, sampling at epoch ends; its decisions
 * written to `decisionsFile` for the learner). With `controller.demonstrations` the
 * heuristic's decisions are recorded as demonstrations (`DemonstratingPolicy`) for Simic's
 * behaviour cloning. Kasmina's lifecycle settings
 * are the study's, with what the task pins (`controller.lifecycle`) over them.
 *
 * Each run gets its own Urza library, forge WAL and nonce file in a fresh directory under
 * `<storage.varDir>/study-runs/`, removed when the run ends: runs go in parallel child
 * processes, and a private library costs one forge and certification of the catalog for
 * the small host's sites (1–4 s, measured in docs/architecture.md) against runs of tens
 * of seconds — cheaper than making a shared library and WAL safe for concurrent writers.
 * The dataset cache and the local signing key stay shared (both are written atomically).
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, EsperError, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { SeedLifecycleStage, type HostDescriptor } from '../leyline/index.js';
import type { SeedReport } from '../kasmina/index.js';
import {
  assertTaskRunnable,
  createTaskHost,
  flopBlocksOfHost,
  loadTaskDataset,
  taskRunId,
  trainTaskSteps,
  growthVariant,
  isGrownArm,
  widenSlotsOf,
  type ArmResult,
  type ArmRunContext,
  type ArmRunner,
  type ArmRunnerModule,
  type ArmRunRequest,
  type GrownArm,
  type GrownSeed,
  type TaskDefinition,
} from '../study/index.js';
import {
  DemonstratingPolicy,
  HeuristicPolicy,
  openLearnedPolicy,
  runGraphBuilder,
  ScheduledGrowthPolicy,
  type SampledDecision,
} from '../tamiyo/index.js';
import { writeDecisionLog } from '../simic/index.js';
import { initTensorBackend } from '../tensor/index.js';
import { decodeArtifact, siteKeyOf } from '../tezzeret/index.js';
import type { UrzaLibrary } from '../urza/index.js';
import { openGrowingRun, type EmbeddedControllerDeps, type GrowingRun } from './growing-run.js';
import { runKeyRing } from './run-key-ring.js';
import { seedFlopBlocks } from './seed-blocks.js';

/** This module, as the study's `grownRunner` (`.ts` under tsx, `.js` from dist). */
export function grownArmRunnerModule(): ArmRunnerModule {
  return { module: fileURLToPath(import.meta.url), exportName: 'createArmRunner' };
}

/** Builds the grown arm's runner (the export the study's child processes call). */
export function createArmRunner(): ArmRunner {
  return new GrownArmRunner();
}

/** Telemetry of a study run goes nowhere: the run's outcome is its result, its failure the trainer's last warning. */
const DISCARD: TelemetrySink = { emit: () => undefined };

/** The run's own storage under `runDir`; the dataset cache and keys stay under the shared var dir. */
function runStorage(settings: EsperSettings, runDir: string): EsperSettings {
  return {
    ...settings,
    storage: {
      ...settings.storage,
      varDir: runDir,
      urzaDatabasePath: path.join(runDir, 'urza', 'catalog.db'),
      urzaArtifactDir: path.join(runDir, 'urza', 'artifacts'),
    },
  };
}

class GrownArmRunner implements ArmRunner {
  async run(request: ArmRunRequest, context: ArmRunContext): Promise<ArmResult> {
    const { task, arm, seed, settings } = request;
    if (!isGrownArm(arm)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `the grown arm runner runs grown arms, not '${arm}'`, {
        details: { field: 'arm', arm },
      });
    }
    assertTaskRunnable(task);
    await initTensorBackend();
    const learned = task.controller?.learned;
    const demonstrations = task.controller?.demonstrations;
    const decisions: SampledDecision[] = [];
    const demonstrator =
      demonstrations === undefined
        ? undefined
        : new DemonstratingPolicy({
            inner: new HeuristicPolicy(task.controller?.heuristic ?? {}),
            builder: runGraphBuilder(),
            ...(demonstrations.everyEpochs === undefined ? {} : { everyEpochs: demonstrations.everyEpochs }),
            onDemonstration: (d) => decisions.push(d),
          });
    const policy =
      learned !== undefined
        ? {
            policy: await openLearnedPolicy(learned.policyFile, {
              seed,
              onDecision: (d) => decisions.push(d),
              ...(learned.decide === undefined ? {} : { decide: learned.decide }),
            }),
          }
        : demonstrator !== undefined
          ? { policy: demonstrator }
          : policyOf(task, arm);
    const keyRing = await runKeyRing(settings);
    const dataset = await loadTaskDataset(task, settings);
    const host = createTaskHost(task.smallHost, dataset, seed, 'study-grown', { widenSlots: widenSlotsOf(task) });
    const runId = taskRunId(task, arm, seed);
    const runsDir = path.join(settings.storage.varDir, 'study-runs');
    let runDir: string | undefined;
    let run: GrowingRun | undefined;
    try {
      await mkdir(runsDir, { recursive: true });
      runDir = await mkdtemp(path.join(runsDir, `${runId}-`));
      const lifecycle = task.controller?.lifecycle;
      const runSettings = runStorage(
        lifecycle === undefined ? settings : { ...settings, kasmina: { ...settings.kasmina, ...lifecycle } },
        runDir,
      );
      run = await openGrowingRun(runSettings, { host, trainingRunId: runId, telemetry: DISCARD, keyRing, seed, ...policy });
      context.signal.throwIfAborted();
      const trained = await trainTaskSteps({ request, context, dataset, host, collaborators: run.collaborators });
      // Read before Kasmina closes: closing ends the live seeds, whose fate here is the stage the run ended in.
      const seeds = await grownSeeds(run.seedReports(), run.growth.library, host.descriptor);
      await run.close('run_completed');
      const fossilized = seeds.filter((s) => s.fate === 'FOSSILIZED').reduce((n, s) => n + s.parameters, 0);
      return {
        ...trained,
        parameters: Number(host.descriptor.parameterCount) + fossilized,
        hostBlocks: flopBlocksOfHost(host),
        seeds,
      };
    } finally {
      const opened = run;
      const dir = runDir;
      const decisionsFile = learned?.decisionsFile ?? demonstrations?.decisionsFile;
      await runCleanup('grown arm', [
        // Written whether the run finished or failed: a run its policy broke is an episode too.
        decisionsFile !== undefined &&
          (() => {
            demonstrator?.flush();
            return writeDecisionLog(decisionsFile, decisions);
          }),
        opened !== undefined && (() => opened.close('run_failed')),
        () => host.dispose(),
        dir !== undefined && (() => rm(dir, { recursive: true, force: true })),
      ]);
    }
  }
}

/**
 * Tamiyo's policy for grown arm `arm`: the scheduled-growth policy over the task's plan with
 * the arm's variant blueprint, or the heuristic with the task's options (a task with a
 * learned controller opens its policy file instead, in the runner).
 * @throws EsperError INVALID_ARGUMENT when the task has no such grown arm
 */
export function policyOf(task: TaskDefinition, arm: GrownArm): Pick<EmbeddedControllerDeps, 'policy' | 'heuristic'> {
  const variant = growthVariant(task, arm);
  if (variant === undefined) {
    const heuristic = task.controller?.heuristic;
    return { policy: 'heuristic', ...(heuristic === undefined ? {} : { heuristic }) };
  }
  const schedule = task.growthPlan.map((g) => ({ atStep: g.atStep, layer: g.site, blueprintId: variant.blueprintId }));
  return { policy: new ScheduledGrowthPolicy({ schedule }) };
}

/** Each seed Kasmina germinated, with the compute its artifact adds. */
async function grownSeeds(reports: readonly SeedReport[], library: UrzaLibrary, host: HostDescriptor): Promise<GrownSeed[]> {
  const seeds: GrownSeed[] = [];
  for (const report of reports) {
    const site = host.sites.find((s) => s.siteId === report.siteId);
    if (site === undefined) {
      throw new EsperError(ErrorCode.INVALID_STATE, `seed ${report.seedId} grew at site '${report.siteId}', which the host does not have`, {
        details: { seedId: report.seedId, siteId: report.siteId },
      });
    }
    const loaded = await library.load(report.blueprintId, siteKeyOf(site));
    seeds.push({
      seedId: report.seedId,
      siteId: report.siteId,
      blueprintId: report.blueprintId,
      germinatedStep: report.germinatedStep,
      fate: stageLabel(report.fate),
      fateStep: report.fateStep,
      fateReason: report.fateReason,
      parameters: report.parameters,
      blocks: seedFlopBlocks(decodeArtifact(loaded.bytes).header),
    });
  }
  return seeds;
}

/** `FOSSILIZED`, `CULLED`, `BLENDING`, … : a seed stage's name without its prefix (the reports' form). */
export function stageLabel(stage: SeedLifecycleStage): string {
  return (SeedLifecycleStage[stage] ?? String(stage)).replace('SEED_STAGE_', '');
}
