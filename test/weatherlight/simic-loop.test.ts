/**
 * The closed loop over real Redis in distributed mode (issue 15, acceptance item 3): a fleet
 * (`esper up --trainers 3`: Tamiyo and each trainer their own OS process) whose Tamiyo runs
 * the GNN policy in sampling mode produces field reports with their decision context; Simic
 * (`openSimicServer`, in this process, on the same Redis) ingests them, trains the version
 * they name, and publishes a signed update that passed its gates; Tamiyo's processes verify
 * and swap it, and later field reports name the new version.
 *
 * The held-out evaluation is injected by this test (a stand-in that rates the candidate
 * above the current policy and the heuristic): the real one (`episodeEvaluator`, which
 * `esper serve simic` uses) plays tens of seconds of held-out episodes, longer than this
 * small fleet runs, so the swap could not be seen; it has its own test
 * (`learn-evaluation.test.ts`). The average-reward gate is lowered to −1 (rewards are accuracy
 * fractions, so ≥ −1.01): a handful of early reports of an untrained policy says nothing of
 * whether the loop works. Every other gate is the prototype's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/core/index.js';
import { BusMessageType, type FieldReport, type TelemetryPacket } from '../../src/leyline/index.js';
import { KeyRing } from '../../src/security/index.js';
import { SIMIC_GATE_DEFAULTS, type SimicUpdate } from '../../src/simic/index.js';
import { initialPolicyVersion } from '../../src/tamiyo/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { openSimicServer } from '../../src/weatherlight/index.js';
import { startEsper } from '../support/esper-process.js';
import { testRedisUrl } from '../support/redis-url.js';
import { cleanUp, openTestBus, readAll, systemUnderTest, writeConfig, type SystemUnderTest } from './support/distributed.js';

const INIT_SEED = 7;
const SPIRALS = { dataset: 'spirals', hidden: [16, 16], epochs: 24, batchSize: 32, learningRate: 0.01, policy: 'gnn' };

let root: string;
let system: SystemUnderTest | undefined;

beforeAll(async () => {
  await initTensorBackend();
  root = await mkdtemp(path.join(tmpdir(), 'esper-simic-loop-'));
});

afterAll(async () => {
  if (system !== undefined) await cleanUp(system);
  await rm(root, { recursive: true, force: true });
});

describe('the closed loop over Redis', () => {
  it('fleet field reports → Simic trains → a gated, signed update → Tamiyo swaps it → later field reports name the new version', async () => {
    const sut = systemUnderTest(testRedisUrl(), path.join(root, 'var'), {
      ESPER_TAMIYO_GNN_SAMPLING: 'true',
      ESPER_TAMIYO_GNN_INIT_SEED: String(INIT_SEED),
    });
    system = sut;
    const settings = loadSettings({
      env: {},
      overrides: {
        storage: { varDir: path.join(root, 'simic-var') },
        oona: { busUrl: sut.redisUrl, streamPrefix: sut.prefix },
        tamiyo: { gnnInitSeed: INIT_SEED },
        simic: { reportsPerUpdate: 1 },
      },
    });
    const keyRing = KeyRing.fromSettings({ ...settings.security, leylineSecret: sut.secret });
    await using bus = openTestBus(sut);
    const updates: SimicUpdate[] = [];
    let stats: string;
    let stderr: string;
    const evaluated: string[] = [];
    const simic = await openSimicServer(settings, {
      bus,
      keyRing,
      telemetry: { emit: () => undefined },
      consumer: 'simic-test',
      thresholds: { ...SIMIC_GATE_DEFAULTS, minAverageReward: -1 },
      // Test stand-in for the held-out evaluator (see the module comment).
      evaluate: async (_candidate, { currentVersion }) => {
        evaluated.push(currentVersion);
        return { candidate: 0.9, current: 0.8, heuristic: 0.8, seeds: 0 };
      },
      onUpdate: (update) => updates.push(update),
    });
    try {
      expect(simic.service.version).toBe(initialPolicyVersion(INIT_SEED));
      const config = await writeConfig(root, 'fleet.json', SPIRALS);
      const child = startEsper(
        ['up', '--trainers', '3', '--config', config, '--seed', '1', '--no-baseline', '--no-ui', '--out', path.join(root, 'out')],
        sut.env,
      );
      const { code } = await child.exit;
      expect(code, child.stderr()).toBe(0);
      await simic.service.idle();
      stats = JSON.stringify(simic.stats());
      stderr = child.stderr();
    } finally {
      await simic.close();
    }

    // Simic trained the version the fleet started with and published the candidate.
    const published = updates.filter((u) => u.outcome.published);
    expect(
      published.length,
      `${JSON.stringify(updates.map((u) => [u.candidateVersion, u.outcome.published]))} ${stats}\n${stderr.slice(-3000)}`,
    ).toBeGreaterThanOrEqual(1);
    const first = published[0] as SimicUpdate;
    expect(first.fromVersion).toBe(initialPolicyVersion(INIT_SEED));
    expect(first.candidateVersion).toBe('simic-v1');
    expect(first.reports).toBeGreaterThanOrEqual(1);
    expect(evaluated[0]).toBe(initialPolicyVersion(INIT_SEED));

    // What crossed Redis: reports of the initial version with their decision context, the
    // signed update, and later reports deciding under the published version.
    const deliveries = await readAll(bus, [BusMessageType.FIELD_REPORT, BusMessageType.POLICY_UPDATE, BusMessageType.TELEMETRY]);
    const tamiyoEvents = deliveries
      .filter((d) => d.type === BusMessageType.TELEMETRY)
      .flatMap((d) =>
        (d.message as TelemetryPacket).events.map(
          (e) => `${d.publishedAtMs} ${d.trainingRunId} ${e.description} ${JSON.stringify(e.attributes)}`,
        ),
      )
      .filter((line) => line.includes('policy_update'));
    const reportTimes = deliveries
      .filter((d) => d.type === BusMessageType.FIELD_REPORT)
      .map(
        (d) =>
          `${d.publishedAtMs} ${d.trainingRunId} ${(d.message as FieldReport).tamiyoPolicyVersion} ${(d.message as FieldReport).notes}`,
      );
    const updateTimes = deliveries.filter((d) => d.type === BusMessageType.POLICY_UPDATE).map((d) => d.publishedAtMs);
    const debug = `${tamiyoEvents.join('\n')}\nupdates at ${updateTimes.join(',')}\n${reportTimes.join('\n')}`;
    const reports = deliveries.filter((d) => d.type === BusMessageType.FIELD_REPORT).map((d) => d.message as FieldReport);
    const policyUpdates = deliveries.filter((d) => d.type === BusMessageType.POLICY_UPDATE);
    expect(policyUpdates.length).toBe(published.length);
    const initial = reports.filter((r) => r.tamiyoPolicyVersion === initialPolicyVersion(INIT_SEED));
    expect(initial.some((r) => r.decisionContext?.graph !== undefined)).toBe(true);
    const later = reports.filter((r) => r.tamiyoPolicyVersion === 'simic-v1');
    expect(later.length, debug).toBeGreaterThan(0);
    expect(later.some((r) => r.decisionContext !== undefined)).toBe(true);
    // The Tamiyo process verified every update (none rejected); the reports above that name
    // simic-v1 were decided by the swapped network (a report's version is the live policy's).
    expect(
      tamiyoEvents.some((line) => line.includes('policy_update_rejected')),
      debug,
    ).toBe(false);
    console.log(
      `closed loop: ${reports.length} field reports (${reports.filter((r) => r.decisionContext !== undefined).length} with decision context), ` +
        `${updates.length} updates (${published.length} published, ${updates.length - published.length} blocked), first on ${first.reports} reports in ${Math.round(first.durationMs)} ms; ` +
        `${later.length} reports of simic-v1 from ${new Set(later.map((r) => r.trainingRunId)).size} runs; ${stats}`,
    );
  }, 420_000);
});
