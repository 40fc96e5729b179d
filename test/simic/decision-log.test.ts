/** An episode's decision log round-trips, and a missing, foreign or truncated one is a typed error naming the file. */
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { readDecisionLog, writeDecisionLog } from '../../src/simic/index.js';
import { PolicyAction, type SampledDecision } from '../../src/tamiyo/index.js';
import { seededRng } from '../../src/tensor/index.js';
import { graphOfSize } from '../tamiyo/fixtures/graphs.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-decision-log-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const rng = seededRng(5);
const decisions: SampledDecision[] = [
  {
    graph: graphOfSize(rng, 20),
    choice: { action: PolicyAction.WAIT },
    logProb: -0.4,
    value: 0.1,
    policyVersion: 'v1',
    step: 32,
    epoch: 0,
  },
  {
    graph: graphOfSize(rng, 25),
    choice: { action: PolicyAction.GERMINATE, siteIndex: 1, blueprintIndex: 3 },
    logProb: -4.2,
    value: 0.2,
    policyVersion: 'v1',
    step: 64,
    epoch: 1,
  },
];

describe('decision log', () => {
  it('round-trips every decision, graphs bit for bit', async () => {
    const file = path.join(root, 'ok.dec');
    await writeDecisionLog(file, decisions);
    const back = await readDecisionLog(file);
    expect(back).toHaveLength(2);
    expect(back[1]?.choice).toEqual(decisions[1]?.choice);
    expect([...(back[1]?.graph.nodes.blueprint.features ?? [])]).toEqual([...(decisions[1]?.graph.nodes.blueprint.features ?? [])]);
    expect(back[0]?.graph.nodes.global.features).toBeInstanceOf(Float32Array);
  });

  it.each([
    ['missing', async (file: string) => file, /cannot read it/],
    [
      'foreign',
      async (file: string) => {
        await writeFile(file, 'not a log at all');
        return file;
      },
      /bad magic/,
    ],
    [
      'truncated',
      async (file: string) => {
        await writeDecisionLog(file, decisions);
        const size = (await readFile(file)).length;
        await truncate(file, Math.floor(size / 2));
        return file;
      },
      /truncated or corrupt/,
    ],
  ] as const)('refuses a %s file with SIMIC_EPISODE_INVALID naming it', async (name, prepare, message) => {
    const file = await prepare(path.join(root, `${name}.dec`));
    const error = await readDecisionLog(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: ErrorCode.SIMIC_EPISODE_INVALID, details: { path: file } });
    expect(String(error)).toMatch(message);
    expect(String(error)).toContain(file);
  });
});
