/**
 * `esper run --distributed` and `esper up --trainers 3` as real processes over the test run's
 * Redis (a private key prefix each): Tamiyo and every trainer in their own OS process under
 * Weatherlight's supervisor. The distributed run grows as the embedded run of the same seed
 * does, and every command Tamiyo issued crossed the bus signed, was verified and was applied
 * or rejected with a reason; a fleet of three shares one Tamiyo and writes a summary table.
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRun, type RunReport } from '../../src/cli/run.js';
import { loadSettings } from '../../src/core/index.js';
import { CommandAckStatus, SeedOperation } from '../../src/leyline/index.js';
import { CommandVerifier, HmacSigner, KeyRing, NonceLedger } from '../../src/security/index.js';
import { capture } from '../cli/fixtures/capture.js';
import { startEsper } from '../support/esper-process.js';
import { testRedisUrl } from '../support/redis-url.js';
import {
  accountedFor,
  cleanUp,
  fates,
  openTestBus,
  runTraffic,
  systemUnderTest,
  tamiyoFieldReports,
  writeConfig,
  type SystemUnderTest,
} from './support/distributed.js';

/** A run that grows within seconds (as in test/cli/run.test.ts). */
const SPIRALS = { dataset: 'spirals', hidden: [16, 16], epochs: 12, batchSize: 32, learningRate: 0.01 };

let root: string;
const systems: SystemUnderTest[] = [];

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-distributed-'));
});

afterAll(async () => {
  await Promise.all(systems.map((s) => cleanUp(s)));
  await rm(root, { recursive: true, force: true });
});

describe('esper run --distributed', () => {
  it('grows as the embedded run of the same seed does; every command crossed the bus signed and was applied or rejected with a reason', async () => {
    const config = await writeConfig(root, 'spirals.json', SPIRALS);

    // Embedded, in this process: Tamiyo in lockstep over the memory bus.
    const embeddedIo = capture();
    const settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var-embedded') } } });
    expect(
      await runRun(['--config', config, '--seed', '3', '--no-baseline', '--json'], embeddedIo.io, { settings }),
      embeddedIo.out.stderr,
    ).toBe(0);
    const embedded = JSON.parse(embeddedIo.out.stdout) as RunReport;

    // Distributed: `esper run --distributed` supervising `esper serve tamiyo` and `esper serve trainer`.
    const system = systemUnderTest(testRedisUrl(), path.join(root, 'var-distributed'));
    systems.push(system);
    const child = startEsper(['run', '--distributed', '--config', config, '--seed', '3', '--no-baseline', '--json'], system.env);
    const { code } = await child.exit;
    expect(code, child.stderr()).toBe(0);
    const result = JSON.parse(child.stdout()) as { reason: string; runs: { report: RunReport }[] };
    expect(result.reason).toBe('completed');
    const report = result.runs[0]?.report as RunReport;
    expect(report.distributed?.busUrl).toBe(system.redisUrl);
    expect(report.distributed?.resumedFromStep).toBeUndefined();
    expect(child.stderr()).toMatch(/\[tamiyo\] esper serve tamiyo: serving every run/);

    // Same growth, within the effect of timing: a remote decision applies a few steps after
    // its epoch's packet instead of at it, so a later decision may see a slightly different
    // host. The embedded run of this seed grows 3 seeds; the distributed one grows too.
    expect(embedded.seeds.length).toBeGreaterThan(0);
    expect(report.seeds.length).toBeGreaterThan(0);
    expect(Math.abs(report.seeds.length - embedded.seeds.length)).toBeLessThanOrEqual(1);

    // Every command Tamiyo issued is on the bus (signed: the bus verified each on reading),
    // reached the trainer, and has exactly one fate — applied, or rejected with its reason.
    await using bus = openTestBus(system);
    const traffic = await runTraffic(bus, report.runId);
    expect(traffic.commands.length).toBeGreaterThan(0);
    // Each verifies on its own against the system's key: signature, and freshness as of one
    // second after it was issued (the test reads them later), nonce unique.
    const signer = new HmacSigner(KeyRing.fromSettings({ ...settings.security, leylineSecret: system.secret }));
    const ledger = new NonceLedger({ ttlSeconds: 600 });
    for (const command of traffic.commands) {
      const issuedMs = Number(command.issuedAt?.seconds ?? 0n) * 1000 + (command.issuedAt?.nanos ?? 0) / 1e6;
      const clock = { wallMs: () => issuedMs + 1_000, monotonicMs: () => performance.now() };
      const verifier = new CommandVerifier({ signer, ledger, sink: { emit: () => undefined }, source: 'test', clock });
      expect(verifier.verify(command)).toMatchObject({ ok: true });
    }
    expect(report.commands.issued).toBe(traffic.commands.length);
    const fateOf = fates(traffic);
    for (const command of traffic.commands) {
      const ack = fateOf.get(command.commandId);
      expect(ack, `no acknowledgement of ${command.commandId}`).toBeDefined();
      expect(accountedFor(ack!)).toBe(true);
    }
    const applied = traffic.commands.filter((c) => fateOf.get(c.commandId)?.status === CommandAckStatus.APPLIED);
    // Those that reached the run after its last step were never verified: RUN_ENDED.
    expect(report.commands.accepted + report.commands.rejected + report.commands.runEnded).toBe(traffic.commands.length);
    expect(applied.length).toBeLessThanOrEqual(report.commands.accepted);
    // Each seed grew from one applied germination.
    const germinations = applied.filter(
      (c) => c.payload.case === 'seedOperation' && c.payload.value.operation === SeedOperation.SEED_OP_GERMINATE,
    );
    expect(report.seeds.length).toBe(germinations.length);

    // Field reports: what Tamiyo's server wrote to its log is what it published.
    const written = await tamiyoFieldReports(system.varDir, report.runId);
    expect(written.map((r) => r.reportId).sort()).toEqual(traffic.fieldReports.map((r) => r.reportId).sort());
    expect(report.fieldReports).toBeLessThanOrEqual(written.length);
  }, 240_000);

  it('esper up --trainers 3: three runs with their own reports share one Tamiyo, and a fleet table sums them up', async () => {
    const config = await writeConfig(root, 'fleet.json', { ...SPIRALS, epochs: 8 });
    const system = systemUnderTest(testRedisUrl(), path.join(root, 'var-fleet'));
    systems.push(system);
    const out = path.join(root, 'fleet-out');
    const child = startEsper(['up', '--trainers', '3', '--config', config, '--seed', '1', '--no-baseline', '--out', out], system.env);
    const { code } = await child.exit;
    expect(code, child.stderr()).toBe(0);
    const table = child.stdout();
    expect(table).toMatch(/^# esper fleet fleet-/);
    const rows = table.split('\n').filter((line) => /^\| fleet-.*-t\d \|/.test(line));
    expect(rows).toHaveLength(3);
    expect(await readFile(path.join(out, 'fleet.md'), 'utf8')).toBe(table);
    for (const [i, dir] of ['t1', 't2', 't3'].entries()) {
      const report = (JSON.parse(await readFile(path.join(out, dir, 'record.json'), 'utf8')) as { report: RunReport }).report;
      expect(report.config.seed).toBe(1 + i);
      expect(report.interrupted).toBe(false);
      expect(rows[i]).toContain(`| ${report.runId} | ${1 + i} |`);
      expect(await readFile(path.join(out, dir, 'report.md'), 'utf8')).toContain(`# esper run ${report.runId}`);
    }
    // One Tamiyo served all three: one field-report log per run, in one place.
    const logs = (await readdir(path.join(system.varDir, 'tamiyo', 'field-reports'))).filter((f) => f.endsWith('.wal'));
    expect(logs.sort()).toEqual(rows.map((r) => `${r.split('|')[1]?.trim()}.wal`).sort());
    expect(child.stderr().match(/\[tamiyo\] esper serve tamiyo: serving every run/g)).toHaveLength(1);
    // Nissa ran beside them as a service of its own.
    expect(child.stderr()).toMatch(/\[nissa\] esper serve nissa: metrics and live view at http:\/\/127\.0\.0\.1:\d+/);
  }, 300_000);
});
