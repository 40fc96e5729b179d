/**
 * A learned policy from its file: Simic's serialised GNN (`serialisePolicy`) as a
 * {@link GnnPolicy} that decides by sampling at epoch ends (`gnn-sampling.ts`) with draws
 * seeded by the run seed, so a run replays its decisions. This is how `esper learn` plays
 * its episodes and how `esper run --policy learned:<file>` and the study run a learned
 * policy: a policy trained as a distribution acts as that distribution. With `decide:
 * 'mode'` it takes its most likely choice at each decision instead (the held-out
 * evaluation's `greedy` arm).
 */
import { readFile } from 'node:fs/promises';
import { ErrorCode, EsperError } from '../core/index.js';
import { seededRng } from '../tensor/index.js';
import { GnnPolicy, type SampledDecision } from './gnn-policy.js';
import { runGraphBuilder } from './graph-builder.js';
import { loadPolicy } from './policy-weights.js';

/** Offset of the decision draws' seed from the run seed (apart from the other per-run streams). */
const SAMPLING_SEED_OFFSET = 7_919;

/** Options of {@link openLearnedPolicy}. */
export interface LearnedPolicyOptions {
  /** The run seed the decisions are drawn with. */
  readonly seed: number;
  /** Called with every decision, in order. */
  readonly onDecision?: (decision: SampledDecision) => void;
  /** Draw decisions (`sample`) or take the most likely one (`mode`); see `GnnSamplingOptions.decide`. @default 'sample' */
  readonly decide?: 'sample' | 'mode';
}

/**
 * The learned policy stored at `file`.
 * @throws EsperError TAMIYO_POLICY_INVALID naming the file when it cannot be read or is not a policy
 */
export async function openLearnedPolicy(file: string, options: LearnedPolicyOptions): Promise<GnnPolicy> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, `learned policy ${file}: cannot read it (${(error as Error).message})`, {
      details: { path: file },
      cause: error,
    });
  }
  const loaded = loadPolicy(bytes, undefined, file);
  return new GnnPolicy({
    gnn: loaded.gnn,
    builder: runGraphBuilder(),
    version: loaded.version,
    sampling: {
      rng: seededRng(options.seed + SAMPLING_SEED_OFFSET),
      ...(options.decide === undefined ? {} : { decide: options.decide }),
      ...(options.onDecision === undefined ? {} : { onDecision: options.onDecision }),
      // The cadence it was learned with, from its file.
      ...(loaded.decisionEveryEpochs === undefined ? {} : { everyEpochs: loaded.decisionEveryEpochs }),
    },
  });
}
