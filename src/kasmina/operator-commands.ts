/**
 * Builds the seed commands an operator (or a test, or a benchmark) sends Kasmina without
 * a controller: germinate a blueprint at a site, cull, pause, resume, fossilize. Every
 * field is structured (spec 01: no annotations); the command is unsigned — sign it with
 * the foundation's `HmacSigner` before sending.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { buildDecisionMetadata, ErrorCode, EsperError } from '../core/index.js';
import {
  AdaptationCommandSchema,
  BlendMode,
  BlendModeSource,
  CommandSeedOperationSchema,
  CommandType,
  SeedOperation,
  type AdaptationCommand,
} from '../leyline/index.js';

/** What an operator can ask Kasmina to do to one seed. */
export const OperatorAction = {
  GERMINATE: 'germinate',
  CULL: 'cull',
  PAUSE: 'pause',
  RESUME: 'resume',
  FOSSILIZE: 'fossilize',
} as const;

/** Union of {@link OperatorAction} values. */
export type OperatorAction = (typeof OperatorAction)[keyof typeof OperatorAction];

/** Inputs of {@link buildOperatorCommand}. */
export interface OperatorCommandInput {
  readonly action: OperatorAction;
  readonly trainingRunId: string;
  readonly seedId: string;
  /** Required for `germinate`. */
  readonly siteId?: string;
  /** Required for `germinate`. */
  readonly blueprintId?: string;
  /** Blend mode of a germinated seed. @default Kasmina's (CONVEX) */
  readonly blendMode?: BlendMode;
  /** Per-channel-group alpha (sets BLEND_MODE_CHANNEL). */
  readonly alphaVec?: readonly number[];
  /** @default a new UUID */
  readonly commandId?: string;
  /** @default 'operator' */
  readonly issuedBy?: string;
}

/** The unsigned command for `input` (throws INVALID_ARGUMENT for missing ids). */
export function buildOperatorCommand(input: OperatorCommandInput): AdaptationCommand {
  const required = (value: string | undefined, name: string): string => {
    if (value === undefined || value.trim().length === 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `${input.action} needs ${name}`, { details: { field: name } });
    }
    return value;
  };
  const base = {
    version: 1,
    commandId: input.commandId ?? randomUUID(),
    trainingRunId: required(input.trainingRunId, 'a training run id'),
    targetSeedId: required(input.seedId, 'a seed id'),
    issuedBy: input.issuedBy ?? 'operator',
  };
  const seedCommand = (operation: ReturnType<typeof create<typeof CommandSeedOperationSchema>>): AdaptationCommand =>
    create(AdaptationCommandSchema, {
      ...base,
      commandType: CommandType.COMMAND_SEED,
      payload: { case: 'seedOperation', value: operation },
    });
  switch (input.action) {
    case OperatorAction.GERMINATE: {
      const channel = input.alphaVec !== undefined && input.alphaVec.length > 0;
      const blendMode = channel ? BlendMode.CHANNEL : input.blendMode;
      const command = seedCommand(
        create(CommandSeedOperationSchema, {
          operation: SeedOperation.SEED_OP_GERMINATE,
          blueprintId: required(input.blueprintId, 'a blueprint id'),
          siteId: required(input.siteId, 'a site id'),
          ...(blendMode === undefined ? {} : { blendMode }),
        }),
      );
      if (channel) {
        command.metadata = buildDecisionMetadata({
          blend: { mode: BlendMode.CHANNEL, modeSource: BlendModeSource.OPERATOR, alpha: 1, alphaVec: input.alphaVec },
        });
      }
      return command;
    }
    case OperatorAction.CULL:
      return seedCommand(create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_CULL }));
    case OperatorAction.FOSSILIZE:
      return seedCommand(create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_FOSSILIZE }));
    case OperatorAction.RESUME:
      return seedCommand(create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_START_TRAINING, resumeFlag: true }));
    case OperatorAction.PAUSE:
      return create(AdaptationCommandSchema, { ...base, commandType: CommandType.COMMAND_PAUSE });
  }
}
