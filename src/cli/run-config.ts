/**
 * What `esper run` runs: {@link RunConfig} (defaults → `--config` file → flags), its flags
 * declared once, and the checks made before any work starts.
 */
import { z } from 'zod';
import { readConfigFile, SettingsError } from '../core/index.js';
import { isLearnedPolicyRef, type LearnedPolicyRef } from '../tamiyo/index.js';
import { DATASETS_HELP } from './datasets-help.js';
import { helpText, type CommandSpec, type FlagSpec, type FlagValues } from './scaffold.js';

/** Datasets `esper run` trains on. */
export const RUN_DATASETS = ['mnist', 'fashion-mnist', 'xor', 'spirals', 'moons'] as const;

/** What `esper run` runs; every field has a default (see {@link DEFAULT_RUN_CONFIG}). */
export const RunConfigSchema = z
  .object({
    dataset: z.enum(RUN_DATASETS),
    host: z.enum(['mlp', 'cnn']),
    /** MLP hidden widths. */
    hidden: z.array(z.number().int().min(1)).min(1).max(8),
    epochs: z.number().int().min(1).max(1000),
    batchSize: z.number().int().min(1),
    learningRate: z.number().positive(),
    seed: z.number().int().min(0),
    /** Controller: the heuristic baseline, the (untrained unless updated) GNN, or a learned policy file (`learned:<file>` draws its decisions, `greedy:<file>` takes its most likely choice). */
    policy: z.union([
      z.enum(['heuristic', 'gnn']),
      z.string().refine(isLearnedPolicyRef, 'heuristic, gnn, learned:<file> or greedy:<file>') as z.ZodType<LearnedPolicyRef>,
    ]),
    /** Also train the static baseline with the same step budget. */
    baseline: z.boolean(),
  })
  .strict();

/** Configuration of one `esper run`. */
export type RunConfig = z.infer<typeof RunConfigSchema>;

/**
 * The default run is one where growth pays (issue 12): a narrow MLP (784-8-10) on
 * Fashion-MNIST is capacity-bound, so Tamiyo widens its hidden layer after the first epoch
 * and the grown host ends well above the static one (seed 0: 84.96 % vs 78.02 %).
 */
export const DEFAULT_RUN_CONFIG: RunConfig = Object.freeze({
  dataset: 'fashion-mnist',
  host: 'mlp',
  hidden: [8],
  epochs: 4,
  batchSize: 128,
  learningRate: 0.002,
  seed: 0,
  policy: 'heuristic',
  baseline: true,
});

/** The flags of `esper run`; a flag wins over the config file, which wins over the defaults. */
export const RUN_FLAGS = {
  config: {
    kind: 'string',
    value: '<file>',
    help: 'JSON object with any of: dataset, host, hidden, epochs, batchSize,\nlearningRate, seed, policy, baseline',
  },
  dataset: { kind: 'string', value: '<name>', help: 'dataset', choices: RUN_DATASETS, defaultText: DEFAULT_RUN_CONFIG.dataset },
  seed: {
    kind: 'integer',
    value: '<n>',
    help: 'seed of initialisation, data order and decisions',
    min: 0,
    defaultText: String(DEFAULT_RUN_CONFIG.seed),
  },
  epochs: {
    kind: 'integer',
    value: '<n>',
    help: 'epochs of the grown run and of the baseline',
    min: 1,
    max: 1000,
    defaultText: String(DEFAULT_RUN_CONFIG.epochs),
  },
  policy: {
    kind: 'string',
    value: '<name>',
    help: "controller: heuristic, gnn (untrained), learned:<file> (esper learn's policy.bin, drawing its decisions) or greedy:<file> (the same, taking its most likely choice)",
    defaultText: DEFAULT_RUN_CONFIG.policy,
  },
  'no-baseline': { kind: 'boolean', help: 'skip the static baseline' },
  out: { kind: 'string', value: '<dir>', help: 'run directory (default <storage.varDir>/runs/<run id>)' },
  json: { kind: 'boolean', help: 'print the report as one JSON object' },
  'no-ui': { kind: 'boolean', help: 'no Nissa (live view and /metrics) for this run; with --distributed, no\nNissa service' },
  distributed: {
    kind: 'boolean',
    help: 'run Tamiyo and each trainer as supervised processes over the Redis bus\n(ESPER_OONA_BUS_URL=redis://…; needs ESPER_LEYLINE_SECRET or _KEYS)',
  },
  learn: {
    kind: 'boolean',
    help: "also run Simic (esper serve simic), learning from the fleet's field reports;\nimplies --distributed; needs --policy gnn, ESPER_TAMIYO_GNN_SAMPLING=true and\nESPER_TAMIYO_GNN_INIT_SEED",
  },
  trainers: {
    kind: 'integer',
    value: '<n>',
    help: 'a fleet: n trainers (seeds seed, seed+1, …) sharing one Tamiyo;\nimplies --distributed',
    min: 1,
    max: 32,
    default: 1,
  },
} as const satisfies Readonly<Record<string, FlagSpec>>;

/** The declaration of `esper run`. */
export const RUN_COMMAND: CommandSpec<typeof RUN_FLAGS> = {
  name: 'esper run',
  summary: 'train a host that grows: Tolaria + Tamiyo + Kasmina in one process',
  synopsis: '[options]',
  flags: RUN_FLAGS,
  notes: `${DATASETS_HELP}.

Writes record.json (config, seed, commands, field reports, metrics) and report.md to the
run directory. Commands are signed with ESPER_LEYLINE_SECRET/KEYS when set, else with the
var dir's local key (created once).

Exit codes: 0 done; 1 the run failed; 2 bad flags, config file, settings or key ring
(nothing started); 130 stopped by SIGINT or SIGTERM (what exists is written and marked
interrupted; a second signal exits at once).`,
};

/** Usage of `esper run`. */
export const RUN_HELP = helpText(RUN_COMMAND);

/**
 * The run's configuration: defaults, then the `--config` file (core `readConfigFile`: it
 * must exist and hold a JSON object), then the flags, checked as a whole.
 * @throws SettingsError naming the file and each bad key
 */
export function resolveRunConfig(
  values: Pick<FlagValues<typeof RUN_FLAGS>, 'config' | 'dataset' | 'seed' | 'epochs' | 'policy' | 'no-baseline'>,
): RunConfig {
  const file = values.config;
  const fromFile = file === undefined ? {} : readConfigFile(file);
  const flags = {
    ...(values.dataset === undefined ? {} : { dataset: values.dataset }),
    ...(values.seed === undefined ? {} : { seed: values.seed }),
    ...(values.epochs === undefined ? {} : { epochs: values.epochs }),
    ...(values.policy === undefined ? {} : { policy: values.policy }),
    ...(values['no-baseline'] ? { baseline: false } : {}),
  };
  const parsed = RunConfigSchema.safeParse({ ...DEFAULT_RUN_CONFIG, ...fromFile, ...flags });
  if (parsed.success) return parsed.data;
  // Flags are checked by their declaration, so what is left came from the file.
  throw new SettingsError(
    parsed.error.issues.map((issue) => ({
      source: 'file',
      file: file ?? '(none)',
      key: issue.path.join('.'),
      message: issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : issue.message,
    })),
  );
}
