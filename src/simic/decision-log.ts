/**
 * An episode's decisions on disk: what a learned policy decided in a run (its child
 * process), for the learner in the parent. One file per episode, written once at the run's
 * end, atomically (temporary file, fsync, rename), as Node's structured serialisation
 * (`v8.serialize`: typed arrays stay binary) after a magic and a format version; read back
 * with every decision's shape checked, so a truncated or foreign file is a typed error
 * naming it, never a half-read episode.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { deserialize, serialize } from 'node:v8';
import { ErrorCode, EsperError } from '../core/index.js';
import { NODE_TYPES, SAMPLED_ACTIONS, type SampledDecision } from '../tamiyo/index.js';

const MAGIC = Buffer.from('ESPRDEC1', 'latin1');

function invalid(file: string, message: string, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.SIMIC_EPISODE_INVALID, `episode decision log ${file}: ${message}`, { details: { path: file }, cause });
}

/** Writes `decisions` to `file` atomically (replacing any file there). */
export async function writeDecisionLog(file: string, decisions: readonly SampledDecision[]): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(Buffer.concat([MAGIC, serialize(decisions)]));
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw invalid(file, `cannot move it into place (${(error as Error).message})`, error);
  }
}

function isDecision(value: unknown): value is SampledDecision {
  if (typeof value !== 'object' || value === null) return false;
  const d = value as Partial<SampledDecision>;
  const graph = d.graph;
  if (graph === undefined || typeof graph !== 'object' || !Array.isArray(graph.edges)) return false;
  for (const type of NODE_TYPES) {
    const set = graph.nodes?.[type];
    if (set === undefined || !Array.isArray(set.ids) || !(set.features instanceof Float32Array)) return false;
  }
  return (
    d.choice !== undefined &&
    (SAMPLED_ACTIONS as readonly number[]).includes(d.choice.action) &&
    typeof d.logProb === 'number' &&
    Number.isFinite(d.logProb) &&
    typeof d.value === 'number' &&
    Number.isFinite(d.value) &&
    typeof d.policyVersion === 'string'
  );
}

/**
 * The decisions stored in `file`.
 * @throws EsperError SIMIC_EPISODE_INVALID naming the file when it is missing, truncated or not a decision log
 */
export async function readDecisionLog(file: string): Promise<SampledDecision[]> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw invalid(file, `cannot read it (${(error as Error).message})`, error);
  }
  if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid(file, 'not a decision log (bad magic)');
  let value: unknown;
  try {
    value = deserialize(bytes.subarray(MAGIC.length));
  } catch (error) {
    throw invalid(file, 'truncated or corrupt', error);
  }
  if (!Array.isArray(value)) throw invalid(file, 'not a list of decisions');
  value.forEach((d, i) => {
    if (!isDecision(d)) throw invalid(file, `decision ${i} is malformed`);
  });
  return value as SampledDecision[];
}
