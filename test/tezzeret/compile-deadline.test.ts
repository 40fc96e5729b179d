import { create } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { AsyncWorker, ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { compileWithDeadline, type ForgeCompiler } from '../../src/tezzeret/compile-deadline.js';
import type { CompiledArtifact } from '../../src/tezzeret/compiler.js';
import { resolveJob } from '../../src/tezzeret/forge-jobs.js';

const catalog = new KarnCatalog();
const job = resolveJob({
  blueprintId: 'BP001',
  site: create(SeedSiteDescriptorSchema, { siteId: 'h', kind: SeedSiteKind.DENSE, shape: [8] }),
});
const artifact = { bytes: new Uint8Array([1]) } as CompiledArtifact;
let worker: AsyncWorker;

afterEach(async () => {
  await worker.close();
});

function run(compile: ForgeCompiler['compile'], clock = new FakeClock(), deadlineMs = 100) {
  worker = new AsyncWorker({ name: 'deadline-test', maxConcurrency: 1, maxQueueDepth: 1 });
  return compileWithDeadline({ compiler: { catalog, compile }, job, descriptor: catalog.get('BP001'), seed: 1, deadlineMs, worker, clock });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  return undefined;
}

describe('compileWithDeadline', () => {
  it('returns the artifact of a compile within its deadline, compiled with the seed and default parameters', async () => {
    const calls: unknown[] = [];
    const result = await run(async (_d, parameters, _s, options) => {
      calls.push([parameters, options.seed]);
      return artifact;
    });
    expect(result).toBe(artifact);
    expect(calls).toEqual([[catalog.defaultParameters('BP001'), 1]]);
  });

  it('discards an artifact that came back after the deadline (synchronous overrun)', async () => {
    const clock = new FakeClock();
    const error = await failure(
      run(async () => {
        clock.advance(500);
        return artifact;
      }, clock),
    );
    expect(isEsperError(error, ErrorCode.TEZZERET_COMPILE_TIMEOUT)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({
      blueprintId: 'BP001',
      siteKey: 'dense:8',
      deadlineMs: 100,
    });
  });

  it('times out an asynchronous compile at the deadline and returns only once it settled', async () => {
    let settled = false;
    const error = await failure(
      run(
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 150));
          settled = true;
          return artifact;
        },
        undefined,
        20,
      ),
    );
    expect(isEsperError(error, ErrorCode.TEZZERET_COMPILE_TIMEOUT)).toBe(true);
    expect(settled).toBe(true);
  });

  it('passes a compile error through unchanged', async () => {
    const boom = new Error('boom');
    expect(
      await failure(
        run(async () => {
          throw boom;
        }),
      ),
    ).toBe(boom);
  });
});
