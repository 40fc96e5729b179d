/**
 * The messages between the study and a run's child process (Node IPC, JSON), each checked
 * with zod on receipt. Parent → child: one `start`. Child → parent: any number of
 * `progress`, then one `result` or one `failure`; then the child exits. A child that exits
 * without either has crashed.
 */
import { z } from 'zod';
import { DATASET_NAMES, LrSchedulePolicy, OptimizerKind } from '../tolaria/index.js';
import { ArmResultSchema } from './arm-runner.js';
import { isGrownArm, STUDY_ARM_PATTERN, type GrownArm, type StudyArm } from './tasks.js';

const positiveInt = z.number().int().min(1);

/** A study arm name (`small`, `large`, `grown`, `grown-<name>`). */
export const StudyArmSchema = z.string().regex(STUDY_ARM_PATTERN) as unknown as z.ZodType<StudyArm>;

/** A grown arm name (`grown`, `grown-<name>`). */
const GrownArmSchema = z.string().refine(isGrownArm, 'a grown arm: grown or grown-<name>') as unknown as z.ZodType<GrownArm>;

const TaskHostSchema = z.discriminatedUnion('family', [
  z.object({ family: z.literal('mlp'), hidden: z.array(positiveInt).min(1), bias: z.boolean().optional() }).strict(),
  z.object({ family: z.literal('cnn'), channels: z.array(positiveInt).min(1), kernelSize: positiveInt }).strict(),
]);

/** Schema of a {@link TaskDefinition} (a child receives the whole definition, not a registry name). */
export const TaskDefinitionSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
    version: positiveInt,
    description: z.string(),
    dataset: z.discriminatedUnion('kind', [
      z
        .object({
          kind: z.literal('tolaria'),
          name: z.enum(DATASET_NAMES),
          layout: z.enum(['flat', 'image']),
          dataSeed: z.number().int().min(0).optional(),
          trainSize: positiveInt.optional(),
          validationSize: positiveInt.optional(),
          noise: z.number().min(0).optional(),
        })
        .strict(),
      z
        .object({
          kind: z.literal('teacher'),
          examples: positiveInt,
          inputSize: positiveInt,
          teacherHidden: positiveInt,
          outputSize: positiveInt,
          teacherBias: z.boolean(),
          teacherWeightRange: z.number().positive().optional(),
          dataSeed: z.number().int().min(0),
        })
        .strict(),
    ]),
    smallHost: TaskHostSchema,
    largeHost: TaskHostSchema,
    growthPlan: z.array(
      z.object({ method: z.literal('widen'), site: z.string(), units: positiveInt, atStep: z.number().int().min(0) }).strict(),
    ),
    controller: z
      .object({
        /** Heuristic options travel as given; the policy checks them (names and ranges) when the run starts. */
        heuristic: z.record(z.string(), z.unknown()).optional(),
        scheduled: z
          .object({
            variants: z
              .array(z.object({ arm: GrownArmSchema, blueprintId: z.string().min(1), label: z.string() }).strict())
              .min(1)
              .refine((variants) => new Set(variants.map((v) => v.arm)).size === variants.length, 'each variant needs its own arm'),
          })
          .strict()
          .optional(),
        lifecycle: z
          .object({
            shadowingSteps: positiveInt.optional(),
            probationSteps: positiveInt.optional(),
            minContribution: z.number().min(-1).max(1).optional(),
          })
          .strict()
          .optional(),
        learned: z
          .object({
            policyFile: z.string().min(1),
            decisionsFile: z.string().min(1).optional(),
            decide: z.enum(['sample', 'mode']).optional(),
          })
          .strict()
          .optional(),
        demonstrations: z
          .object({ decisionsFile: z.string().min(1), everyEpochs: positiveInt.optional() })
          .strict()
          .optional(),
      })
      .strict()
      .refine(
        (c) => [c.heuristic, c.scheduled, c.learned].filter((x) => x !== undefined).length <= 1,
        'a task is grown by the heuristic, a schedule or a learned policy, one of them',
      )
      .refine(
        (c) => c.demonstrations === undefined || (c.scheduled === undefined && c.learned === undefined),
        'demonstrations record the heuristic: not with a schedule or a learned policy',
      )
      .optional(),
    optimizer: z.object({ kind: z.enum(Object.values(OptimizerKind)), learningRate: z.number().positive() }).strict(),
    lrSchedule: z.object({ policy: z.enum(Object.values(LrSchedulePolicy)), warmupSteps: z.number().int().min(0) }).strict(),
    loss: z.enum(['softmax_cross_entropy', 'mse']),
    batchSize: positiveInt,
    steps: positiveInt,
    metric: z.enum(['validation_accuracy', 'training_loss']),
    unsupported: z.string().optional(),
  })
  .strict();

/** Parent → child: what to run and with which runner. */
export const StartMessageSchema = z
  .object({
    type: z.literal('start'),
    runner: z.object({ module: z.string().min(1), exportName: z.string().min(1) }).strict(),
    task: TaskDefinitionSchema,
    arm: StudyArmSchema,
    seed: z.number().int().min(0),
    /** The parent's resolved settings (the child does not read the environment again). */
    settings: z.record(z.string(), z.unknown()),
  })
  .strict();

/** Child → parent messages. */
export const ChildMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('progress'), step: z.number().int().min(0), totalSteps: positiveInt, loss: z.number().or(z.null()) }).strict(),
  z.object({ type: z.literal('result'), result: ArmResultSchema }).strict(),
  z
    .object({
      type: z.literal('failure'),
      message: z.string(),
      /** The EsperError code, when the failure was a typed error. */
      code: z.string().optional(),
    })
    .strict(),
]);

/** Parent → child message. */
export type StartMessage = z.infer<typeof StartMessageSchema>;

/** Child → parent message. */
export type ChildMessage = z.infer<typeof ChildMessageSchema>;
