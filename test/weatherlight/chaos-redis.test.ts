/**
 * Chaos: `redis-server` restarted (SIGKILL, then started again on its append-only file) in
 * the middle of an `esper up` run. Every process reconnects and the run completes; what was
 * acknowledged before the restart is accounted for: every command Tamiyo issued has exactly
 * one fate (applied, or rejected with its reason), and every field report Tamiyo logged is
 * on the bus. The server is this file's own (persistent, fsync always), not the shared one.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../src/cli/run.js';
import { startEsper } from '../support/esper-process.js';
import { PrivateRedisServer } from '../support/redis-server.js';
import { accountedFor, fates, openTestBus, runTraffic, systemUnderTest, tamiyoFieldReports, writeConfig } from './support/distributed.js';

let root: string;
let redis: PrivateRedisServer;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-chaos-redis-'));
  redis = await PrivateRedisServer.start({ persistent: true });
});

afterAll(async () => {
  await redis.dispose();
  await rm(root, { recursive: true, force: true });
});

describe('chaos: Redis restarted mid-run', () => {
  it('every service reconnects, the run completes, and every command and field report is accounted for', async () => {
    const system = systemUnderTest(redis.url, path.join(root, 'var'));
    const config = await writeConfig(root, 'run.json', {
      dataset: 'spirals',
      hidden: [16, 16],
      epochs: 24,
      batchSize: 8,
      learningRate: 0.01,
    });
    const out = path.join(root, 'out');
    const child = startEsper(['up', '--config', config, '--no-baseline', '--no-ui', '--out', out], system.env);
    await child.waitFor(/\[trainer-1\] epoch 4\/24: train loss/);
    await redis.kill();
    // Down until the trainer has noticed (its bus reports the outage once), then back.
    await child.waitFor(/\[trainer-1\] ! WARNING store_unavailable/);
    await redis.restart();
    const { code } = await child.exit;
    expect(code, child.stderr()).toBe(0);
    const report = (JSON.parse(await readFile(path.join(out, 'record.json'), 'utf8')) as { report: RunReport }).report;
    expect(report.interrupted).toBe(false);
    expect(report.grown.steps).toBe(24 * 125);

    await using bus = openTestBus(system);
    const traffic = await runTraffic(bus, report.runId);
    // Issued vs applied vs rejected: each command on the bus reached the trainer, which
    // counted it (accepted or rejected by its verifier) and acknowledged its one fate.
    expect(report.commands.issued).toBe(traffic.commands.length);
    expect(report.commands.accepted + report.commands.rejected).toBe(traffic.commands.length);
    const fateOf = fates(traffic);
    for (const command of traffic.commands) expect(accountedFor(fateOf.get(command.commandId)!), command.commandId).toBe(true);
    // Reports written vs consumed: what Tamiyo logged is on the bus; the trainer read what
    // was published before it closed.
    const written = await tamiyoFieldReports(system.varDir, report.runId);
    expect(new Set(traffic.fieldReports.map((r) => r.reportId))).toEqual(new Set(written.map((r) => r.reportId)));
    expect(report.fieldReports).toBeLessThanOrEqual(written.length);
  }, 300_000);
});
