/**
 * The task registry: every study task named and versioned (`fmnist-mlp-narrow@1`), each
 * fully defining what its arms train on and how — dataset, host per arm, optimizer, LR
 * schedule, batch size, step budget, metric — and the growth plan of the `grown` arm, so
 * the `large` host (the static host with the parameter count the grown arm ends with) is
 * known before anything runs. A task's definition never changes under its version: change
 * the definition, bump the version.
 */
import { ErrorCode, EsperError, type EsperSettings } from '../core/index.js';
import type { HeuristicPolicyOptions } from '../tamiyo/index.js';
import { LrSchedulePolicy, OptimizerKind, type DatasetName } from '../tolaria/index.js';

/** The arms a study compares by default (a task with growth variants has more grown arms: {@link armsOfTask}). */
export const STUDY_ARMS = ['small', 'grown', 'large'] as const;

/** A grown arm: `grown`, or a task's growth variant `grown-<name>` (e.g. `grown-random`). */
export type GrownArm = 'grown' | `grown-${string}`;

/** One arm: `small` (host as is, static), a grown arm (the small host growing), `large` (static, the grown size). */
export type StudyArm = 'small' | 'large' | GrownArm;

/** Every well-formed arm name: `small`, `large`, `grown`, `grown-<name>` (lower-case letters, digits, inner hyphens). */
export const STUDY_ARM_PATTERN = /^(small|large|grown(-[a-z0-9]+(-[a-z0-9]+)*)?)$/;

/** Whether `arm` is a grown arm (`grown` or `grown-<name>`). */
export function isGrownArm(arm: string): arm is GrownArm {
  return STUDY_ARM_PATTERN.test(arm) && arm.startsWith('grown');
}

/** A host of Tolaria's `mlp` or `cnn` family. */
export type TaskHost =
  | {
      readonly family: 'mlp';
      readonly hidden: readonly number[];
      /** Biases in every dense layer. @default true */
      readonly bias?: boolean;
    }
  | { readonly family: 'cnn'; readonly channels: readonly number[]; readonly kernelSize: number };

/** Where a task's examples come from. */
export type TaskDataset =
  /** A dataset of Tolaria's `loadDataset`; synthetic ones are drawn with `dataSeed` whatever the run seed. */
  | {
      readonly kind: 'tolaria';
      readonly name: DatasetName;
      readonly layout: 'flat' | 'image';
      readonly dataSeed?: number;
      readonly trainSize?: number;
      readonly validationSize?: number;
      readonly noise?: number;
    }
  /** GradMax's student–teacher regression: a fixed random teacher MLP labels Gaussian inputs. */
  | {
      readonly kind: 'teacher';
      readonly examples: number;
      readonly inputSize: number;
      readonly teacherHidden: number;
      readonly outputSize: number;
      readonly teacherBias: boolean;
      /**
       * The teacher's weights are uniform(−r, r) with this r (GradMax's notebook: `weights_range`
       * 1). @default Glorot uniform (Keras' dense default, which the notebook overwrites)
       */
      readonly teacherWeightRange?: number;
      /** Seed of the teacher and the inputs (`teacher-data.ts`), the same for every run. */
      readonly dataSeed: number;
    };

/** One growth the grown arm is meant to make (a hint for its controller, and the parameter budget). */
export interface GrowthStepHint {
  /** Growth method: new units in an existing hidden layer (MLP) or new channels in a conv block (CNN). */
  readonly method: 'widen';
  /** Seed site of the layer that grows (`hidden1`, `block2`). */
  readonly site: string;
  /** Units (MLP) or channels (CNN) added. */
  readonly units: number;
  /** Optimizer step at which it is added. */
  readonly atStep: number;
}

/** One grown arm of a task with scheduled growth: which blueprint makes every growth of the plan. */
export interface GrowthVariant {
  /** The arm: `grown`, or `grown-<name>`. */
  readonly arm: GrownArm;
  /** The blueprint germinated for every growth of the plan (its unit count is the plan's). */
  readonly blueprintId: string;
  /** What the variant is, for reports (`GradMax`, `random`). */
  readonly label: string;
}

/** How the grown arms' controller (Tamiyo) is set up for a task. */
export interface TaskController {
  /** Options of Tamiyo's heuristic policy (checked by the policy when the run starts). @default the policy's defaults */
  readonly heuristic?: HeuristicPolicyOptions;
  /**
   * Scheduled growth instead of the heuristic: Tamiyo's `ScheduledGrowthPolicy` executes the
   * growth plan — each growth at its step, at the next free growth slot of its layer (the
   * grown host gets one WIDEN slot per growth the plan makes in a layer) — with one grown
   * arm per variant, each growing with its own blueprint. Not with `heuristic`.
   */
  readonly scheduled?: { readonly variants: readonly GrowthVariant[] };
  /**
   * Kasmina lifecycle settings the task pins for its grown arms, over the study's `kasmina`
   * settings, so that what its protocol needs does not depend on the settings it runs with.
   * @default none pinned
   */
  readonly lifecycle?: TaskLifecycle;
  /**
   * A learned policy (Simic's) grows the grown arm instead of the heuristic: the serialised
   * GNN at `policyFile`, deciding by sampling at epoch ends (at the cadence its file names)
   * with draws seeded by the run seed, or (`decide: 'mode'`) taking its most likely choice.
   * With `decisionsFile`, the run writes every decision there when it ends (one episode for
   * the learner). Not with `heuristic` or `scheduled`.
   */
  readonly learned?: {
    readonly policyFile: string;
    readonly decisionsFile?: string;
    /** @default 'sample' */
    readonly decide?: 'sample' | 'mode';
  };
  /**
   * The heuristic grows the grown arm and its decisions are recorded as demonstrations for
   * behaviour cloning (`DemonstratingPolicy`): graphs built at every `everyEpochs`-th epoch
   * end (the cadence of the policy that learns from them; default 1), written to
   * `decisionsFile` when the run ends. Not with `scheduled` or `learned`.
   */
  readonly demonstrations?: {
    readonly decisionsFile: string;
    readonly everyEpochs?: number;
  };
}

/** The lifecycle settings a task may pin (ranges as the `kasmina` settings section). */
export type TaskLifecycle = Partial<Pick<EsperSettings['kasmina'], 'shadowingSteps' | 'probationSteps' | 'minContribution'>>;

/** A registered task. */
export interface TaskDefinition {
  /** Name without version (`fmnist-mlp-narrow`). */
  readonly id: string;
  readonly version: number;
  /** One line for listings and reports. */
  readonly description: string;
  readonly dataset: TaskDataset;
  /** The `small` host; the `grown` arm starts from it. */
  readonly smallHost: TaskHost;
  /** The `large` host: the small host after every step of {@link growthPlan}. */
  readonly largeHost: TaskHost;
  /** What the grown arm adds, where and when; its sum is the task's growth budget. */
  readonly growthPlan: readonly GrowthStepHint[];
  /** The grown arm's controller set-up. @default Tamiyo's heuristic with its defaults */
  readonly controller?: TaskController;
  readonly optimizer: { readonly kind: OptimizerKind; readonly learningRate: number };
  readonly lrSchedule: { readonly policy: LrSchedulePolicy; readonly warmupSteps: number };
  /** Loss trained on. */
  readonly loss: 'softmax_cross_entropy' | 'mse';
  readonly batchSize: number;
  /** Optimizer steps of every arm. */
  readonly steps: number;
  /** What the study compares: final validation accuracy (classification) or final training loss (regression). */
  readonly metric: 'validation_accuracy' | 'training_loss';
  /** Present when the harness cannot run the task yet: what is missing, for the typed error. */
  readonly unsupported?: string;
}

/** What the classification tasks share: Adam on a cosine schedule, cross-entropy, final validation accuracy. */
function classificationTask(
  task: Omit<TaskDefinition, 'version' | 'optimizer' | 'lrSchedule' | 'loss' | 'metric'> & {
    readonly learningRate: number;
    /** @default 1 */
    readonly version?: number;
  },
): TaskDefinition {
  const { learningRate, version = 1, ...rest } = task;
  return {
    ...rest,
    version,
    optimizer: { kind: OptimizerKind.ADAM, learningRate },
    lrSchedule: { policy: LrSchedulePolicy.COSINE, warmupSteps: 0 },
    loss: 'softmax_cross_entropy',
    metric: 'validation_accuracy',
  };
}

const FMNIST_MLP_NARROW = classificationTask({
  id: 'fmnist-mlp-narrow',
  description: 'MLP 784-8-10 on Fashion-MNIST, grown to 784-32-10 (large: static 784-32-10)',
  dataset: { kind: 'tolaria', name: 'fashion-mnist', layout: 'flat' },
  smallHost: { family: 'mlp', hidden: [8] },
  largeHost: { family: 'mlp', hidden: [32] },
  growthPlan: [{ method: 'widen', site: 'hidden1', units: 24, atStep: 600 }],
  learningRate: 2e-3,
  batchSize: 128,
  steps: 6000,
});

const FMNIST_CNN_SMALL = classificationTask({
  id: 'fmnist-cnn-small',
  description: 'CNN conv(4)-pool-conv(8)-pool-dense on Fashion-MNIST, block2 grown to 16 channels (large: static conv(4)-conv(16))',
  dataset: { kind: 'tolaria', name: 'fashion-mnist', layout: 'image' },
  smallHost: { family: 'cnn', channels: [4, 8], kernelSize: 3 },
  largeHost: { family: 'cnn', channels: [4, 16], kernelSize: 3 },
  growthPlan: [{ method: 'widen', site: 'block2', units: 8, atStep: 300 }],
  learningRate: 2e-3,
  batchSize: 64,
  // About a minute per run on one quiet core (wasm convolutions are the cost).
  steps: 1500,
});

/**
 * `fmnist-cnn-small@1` at batch 128, the grown arm's plan at the end of the first epoch.
 * What @1 does not let happen: Tamiyo's heuristic decides at epoch boundaries, and @1's
 * first one (60,000 / 64 = 938 steps) leaves 562 of its 1,500 steps, with no validation
 * pass after it to fossilize a seed; and at batch 64 the per-step loss's EWMA deviation on
 * Fashion-MNIST (0.12–0.15) is above the risk engine's loss-volatility threshold (0.1125),
 * which holds the germination (measured: @1's grown arm, seed 0, grew nothing; its capacity
 * growth at step 938 was held with `loss_volatility_high`). At batch 128 the epoch is 469
 * steps (three validation passes before step 1,500) and the noise is lower.
 */
const FMNIST_CNN_SMALL_V2 = classificationTask({
  id: 'fmnist-cnn-small',
  version: 2,
  description:
    'CNN conv(4)-pool-conv(8)-pool-dense on Fashion-MNIST, batch 128, block2 grown to 16 channels (large: static conv(4)-conv(16))',
  dataset: { kind: 'tolaria', name: 'fashion-mnist', layout: 'image' },
  smallHost: { family: 'cnn', channels: [4, 8], kernelSize: 3 },
  largeHost: { family: 'cnn', channels: [4, 16], kernelSize: 3 },
  growthPlan: [{ method: 'widen', site: 'block2', units: 8, atStep: 469 }],
  learningRate: 2e-3,
  batchSize: 128,
  steps: 1500,
});

const SPIRALS_MLP = classificationTask({
  id: 'spirals-mlp',
  description: 'MLP 2-4-2 on two spirals (cannot fit them), grown to 2-64-2 (large: static 2-64-2, fits them)',
  dataset: { kind: 'tolaria', name: 'spirals', layout: 'flat', dataSeed: 0, trainSize: 1000, validationSize: 400 },
  smallHost: { family: 'mlp', hidden: [4] },
  largeHost: { family: 'mlp', hidden: [64] },
  growthPlan: [{ method: 'widen', site: 'hidden1', units: 60, atStep: 500 }],
  learningRate: 1e-2,
  batchSize: 32,
  steps: 4000,
});

/**
 * GradMax's student–teacher protocol (Evci et al. 2022, `Student_Teacher.ipynb`): teacher
 * MLP 10→10→10 (ReLU, no bias) labels 1,000 Gaussian inputs; the student starts at 5 hidden
 * units and adds one every 200 steps five times, then trains 500 more steps (1,500 in all);
 * plain SGD lr 0.1 on MSE, full batch; metric: final training loss.
 */
const STUDENT_TEACHER: TaskDefinition = {
  id: 'student-teacher',
  version: 1,
  description: 'GradMax student–teacher: student MLP 10-5-10 (no bias) grown +1 unit every 200 steps ×5 toward teacher 10-10-10, MSE',
  dataset: { kind: 'teacher', examples: 1000, inputSize: 10, teacherHidden: 10, outputSize: 10, teacherBias: false, dataSeed: 0 },
  smallHost: { family: 'mlp', hidden: [5], bias: false },
  largeHost: { family: 'mlp', hidden: [10], bias: false },
  growthPlan: [200, 400, 600, 800, 1000].map((atStep) => ({ method: 'widen' as const, site: 'hidden1', units: 1, atStep })),
  optimizer: { kind: OptimizerKind.SGD, learningRate: 0.1 },
  lrSchedule: { policy: LrSchedulePolicy.CONSTANT, warmupSteps: 0 },
  loss: 'mse',
  batchSize: 1000,
  steps: 1500,
  metric: 'training_loss',
};

/**
 * `student-teacher` made faithful to the notebook: the teacher's weights uniform(−1, 1)
 * (`weights_range` 1, not Keras' Glorot default), and the growth plan executed as the
 * protocol does — one unit at steps 200, 400, …, 1000 by Tamiyo's scheduled-growth policy —
 * by GradMax (`grown`, BP053) and by the random baseline (`grown-random`, BP054). Lifecycle
 * pinned: each unit is decided (G4) about 100 steps after its growth, well before the
 * next, and G4 keeps every unit that lowers the validation loss at all (`minContribution`
 * 0): the protocol keeps every unit it grows, and a slow-starting unit culled at 1 % would
 * make the arms differ in size, not only in how their units start.
 */
const STUDENT_TEACHER_2: TaskDefinition = {
  ...STUDENT_TEACHER,
  version: 2,
  description:
    'GradMax student–teacher, teacher uniform(−1, 1): student MLP 10-5-10 (no bias) grown +1 unit every 200 steps ×5 by GradMax (grown) or random (grown-random) growth, MSE',
  dataset: {
    kind: 'teacher',
    examples: 1000,
    inputSize: 10,
    teacherHidden: 10,
    outputSize: 10,
    teacherBias: false,
    teacherWeightRange: 1,
    dataSeed: 0,
  },
  controller: {
    scheduled: {
      variants: [
        { arm: 'grown', blueprintId: 'BP053', label: 'GradMax' },
        { arm: 'grown-random', blueprintId: 'BP054', label: 'random' },
      ],
    },
    lifecycle: { shadowingSteps: 50, probationSteps: 50, minContribution: 0 },
  },
};

/** Every registered task, newest version of each name last. */
export const STUDY_TASKS: readonly TaskDefinition[] = Object.freeze([
  FMNIST_MLP_NARROW,
  FMNIST_CNN_SMALL,
  FMNIST_CNN_SMALL_V2,
  SPIRALS_MLP,
  STUDENT_TEACHER,
  STUDENT_TEACHER_2,
]);

/** `id@version`, the key a study directory records. */
export function taskKey(task: Pick<TaskDefinition, 'id' | 'version'>): string {
  return `${task.id}@${task.version}`;
}

/**
 * The task named `name`: `id@version` for one version, or a bare `id` for its newest.
 * @throws EsperError INVALID_ARGUMENT naming the known tasks
 */
export function findTask(name: string, tasks: readonly TaskDefinition[] = STUDY_TASKS): TaskDefinition {
  const [id, versionText] = name.split('@');
  const matching = tasks.filter((t) => t.id === id);
  const found =
    versionText === undefined
      ? matching.reduce<TaskDefinition | undefined>(
          (newest, t) => (newest === undefined || t.version > newest.version ? t : newest),
          undefined,
        )
      : matching.find((t) => String(t.version) === versionText);
  if (found === undefined) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown study task '${name}' (known: ${tasks.map(taskKey).join(', ')})`, {
      details: { field: 'task', task: name },
    });
  }
  return found;
}

/**
 * Throws the typed refusal of a task the harness cannot run.
 * @throws EsperError STUDY_TASK_UNSUPPORTED with `details.missing`
 */
export function assertTaskRunnable(task: TaskDefinition): void {
  if (task.unsupported === undefined) return;
  throw new EsperError(ErrorCode.STUDY_TASK_UNSUPPORTED, `study task ${taskKey(task)} cannot run yet: ${task.unsupported}`, {
    details: { task: taskKey(task), missing: task.unsupported },
  });
}

/** The host an arm starts with (grown arms start from the small host). */
export function hostOfArm(task: TaskDefinition, arm: StudyArm): TaskHost {
  return arm === 'large' ? task.largeHost : task.smallHost;
}

/** The grown arms of a task: one per growth variant of a scheduled task, else `grown`. */
export function grownArmsOf(task: TaskDefinition): GrownArm[] {
  return task.controller?.scheduled?.variants.map((v) => v.arm) ?? ['grown'];
}

/** Every arm of a task, in report order: `small`, its grown arms, `large`. */
export function armsOfTask(task: TaskDefinition): StudyArm[] {
  return ['small', ...grownArmsOf(task), 'large'];
}

/**
 * The growth variant of grown arm `arm` of a scheduled task; undefined for a task the
 * heuristic grows (its one grown arm is `grown`).
 * @throws EsperError INVALID_ARGUMENT when the task has no such grown arm
 */
export function growthVariant(task: TaskDefinition, arm: GrownArm): GrowthVariant | undefined {
  if (!grownArmsOf(task).includes(arm)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `task ${taskKey(task)} has no arm '${arm}' (arms: ${armsOfTask(task).join(', ')})`, {
      details: { field: 'arm', arm },
    });
  }
  return task.controller?.scheduled?.variants.find((v) => v.arm === arm);
}

/**
 * Growth slots per layer the grown host needs: how many growths the plan makes in each layer
 * (a scheduled task grows a layer once per slot); 1 for a task the heuristic grows.
 */
export function widenSlotsOf(task: TaskDefinition): number {
  if (task.controller?.scheduled === undefined) return 1;
  const perLayer = new Map<string, number>();
  for (const step of task.growthPlan) perLayer.set(step.site, (perLayer.get(step.site) ?? 0) + 1);
  return Math.max(1, ...perLayer.values());
}

/** Per-example input shape and class (or output) count of a task's data. */
export interface TaskShape {
  readonly inputShape: readonly number[];
  readonly outputs: number;
}

/**
 * Parameters of `host` on data of `shape` (weights and biases; `bias: false` for hosts
 * without biases), counted the way Tolaria's hosts are built (same-padding 3×3 convs, 2×2 pools).
 */
export function hostParameterCount(host: TaskHost, shape: TaskShape, bias = true): number {
  const b = bias ? 1 : 0;
  if (host.family === 'mlp') {
    let inputs = shape.inputShape.reduce((n, d) => n * d, 1);
    let total = 0;
    for (const units of [...host.hidden, shape.outputs]) {
      total += inputs * units + b * units;
      inputs = units;
    }
    return total;
  }
  let [height = 1, width = 1, channels = 1] = shape.inputShape;
  let total = 0;
  for (const filters of host.channels) {
    total += host.kernelSize * host.kernelSize * channels * filters + b * filters;
    channels = filters;
    height = Math.floor(height / 2);
    width = Math.floor(width / 2);
  }
  return total + height * width * channels * shape.outputs + b * shape.outputs;
}

/** The small host after every step of the task's growth plan. */
export function grownHost(task: TaskDefinition): TaskHost {
  const host = task.smallHost;
  const widths = host.family === 'mlp' ? [...host.hidden] : [...host.channels];
  const prefix = host.family === 'mlp' ? 'hidden' : 'block';
  for (const step of task.growthPlan) {
    const index = Number(step.site.slice(prefix.length)) - 1;
    if (!step.site.startsWith(prefix) || !Number.isInteger(index) || widths[index] === undefined) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `task ${taskKey(task)}: growth site '${step.site}' is not a site of its host`, {
        details: { field: 'growthPlan', site: step.site },
      });
    }
    widths[index] += step.units;
  }
  return host.family === 'mlp' ? { ...host, hidden: widths } : { family: 'cnn', channels: widths, kernelSize: host.kernelSize };
}

/** Per-example input shape and outputs of a task's data, known without loading it. */
export function taskShape(task: TaskDefinition): TaskShape {
  const d = task.dataset;
  if (d.kind === 'teacher') return { inputShape: [d.inputSize], outputs: d.outputSize };
  switch (d.name) {
    case 'mnist':
    case 'fashion-mnist':
      return { inputShape: d.layout === 'image' ? [28, 28, 1] : [784], outputs: 10 };
    case 'cifar10':
      return { inputShape: d.layout === 'image' ? [32, 32, 3] : [3072], outputs: 10 };
    case 'xor':
    case 'spirals':
    case 'moons':
      return { inputShape: [2], outputs: 2 };
    default: {
      const never: never = d.name;
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown dataset '${String(never)}'`);
    }
  }
}

/** `784-8-10` or `conv 4-8`: a host in a few characters, for reports. */
export function describeHost(host: TaskHost): string {
  return host.family === 'mlp' ? `mlp ${host.hidden.join('-')}` : `cnn ${host.channels.join('-')} (${host.kernelSize}×${host.kernelSize})`;
}
