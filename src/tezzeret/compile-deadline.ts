/**
 * One compile under a deadline. Compilation is synchronous tensor work, so the worker's
 * deadline can only fire at the compile's own awaits; the measured duration is therefore
 * also compared with the deadline when the compile returns, and a late artifact is
 * discarded. Either way the compile settles before this returns: no two compiles overlap,
 * no tensors leak.
 */
import { ErrorCode, EsperError, isEsperError, type AsyncWorker, type Clock } from '../core/index.js';
import type { BlueprintDescriptor, SeedSiteDescriptor } from '../leyline/index.js';
import type { BlueprintParameters, KarnCatalog } from '../karn/index.js';
import type { CompiledArtifact, CompileOptions } from './compiler.js';
import { jobKey, type ResolvedForgeJob } from './forge-jobs.js';

/** The slice of `TezzeretCompiler` the forge uses. */
export interface ForgeCompiler {
  readonly catalog: KarnCatalog;
  compile(
    descriptor: BlueprintDescriptor,
    parameters: BlueprintParameters,
    site: SeedSiteDescriptor,
    options: CompileOptions,
  ): Promise<CompiledArtifact>;
}

/** What {@link compileWithDeadline} runs. */
export interface DeadlineCompile {
  readonly compiler: ForgeCompiler;
  readonly job: ResolvedForgeJob;
  readonly descriptor: BlueprintDescriptor;
  readonly seed: number;
  /** Deadline of the compile, in ms from submission. */
  readonly deadlineMs: number;
  /** A worker with concurrency 1 that runs the compile. */
  readonly worker: AsyncWorker;
  readonly clock: Clock;
}

/**
 * Compiles `job` with the default parameters of its blueprint under `deadlineMs`.
 * @throws EsperError `TEZZERET_COMPILE_TIMEOUT` when the deadline fired or the compile
 *   returned after it; any compile error unchanged.
 */
export async function compileWithDeadline(run: DeadlineCompile): Promise<CompiledArtifact> {
  const { compiler, job, deadlineMs, clock } = run;
  const parameters = compiler.catalog.defaultParameters(job.blueprintId);
  let inner: Promise<CompiledArtifact> | undefined;
  const startMs = clock.monotonicMs();
  const handle = run.worker.submit(
    () => {
      inner = compiler.compile(run.descriptor, parameters, job.site, { seed: run.seed });
      return inner;
    },
    { deadlineMs, name: jobKey(job) },
  );
  let artifact: CompiledArtifact;
  try {
    artifact = await handle.result;
  } catch (error) {
    if (!isEsperError(error, ErrorCode.WORKER_TIMEOUT)) throw error;
    await inner?.catch(() => undefined);
    throw timeoutError(job, deadlineMs, clock.monotonicMs() - startMs, error);
  }
  const elapsedMs = clock.monotonicMs() - startMs;
  if (elapsedMs > deadlineMs) throw timeoutError(job, deadlineMs, elapsedMs, undefined);
  return artifact;
}

function timeoutError(job: ResolvedForgeJob, deadlineMs: number, elapsedMs: number, cause: unknown): EsperError {
  return new EsperError(
    ErrorCode.TEZZERET_COMPILE_TIMEOUT,
    `compile of ${jobKey(job)} took ${elapsedMs.toFixed(1)} ms, over its ${deadlineMs} ms deadline`,
    { details: { blueprintId: job.blueprintId, siteKey: job.siteKey, deadlineMs }, cause },
  );
}
