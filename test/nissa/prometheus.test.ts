/**
 * A real Prometheus (Debian `prometheus`, installed by `.ci/run`) scraping the Nissa of a
 * short `esper run` every second: the prototype's frozen metric names are in its database
 * with sane values when the run is over.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capture } from '../cli/fixtures/capture.js';
import { runRun } from '../../src/cli/run.js';
import { loadSettings } from '../../src/core/index.js';
import { freePort } from '../support/redis-server.js';

let root: string;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let nissaPort: number;

/** Polls `probe` until it returns a value, or fails after `ms`. */
async function until<T>(probe: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** An instant query's vector: labels and value per series. */
async function query(expr: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-prometheus-'));
  nissaPort = await freePort();
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  const config = path.join(root, 'prometheus.yml');
  await writeFile(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      '  - job_name: nissa',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${nissaPort}']`,
      '',
    ].join('\n'),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(root, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: 'ignore' },
  );
  await until(async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined), 30_000, 'Prometheus to be ready');
}, 60_000);

afterAll(async () => {
  prometheus?.kill('SIGTERM');
  await new Promise((resolve) => (prometheus?.exitCode !== null ? resolve(undefined) : prometheus.once('exit', resolve)));
  await rm(root, { recursive: true, force: true });
});

describe('Prometheus scraping Nissa', () => {
  it('finds the frozen metric names with sane values after a short run', async () => {
    const config = path.join(root, 'run.json');
    await writeFile(config, JSON.stringify({ dataset: 'spirals', hidden: [16, 16], epochs: 14, batchSize: 8, learningRate: 0.01 }));
    const settings = loadSettings({
      env: {},
      overrides: { storage: { varDir: path.join(root, 'var') }, nissa: { httpPort: nissaPort } },
    });
    const { io, out } = capture();
    const running = runRun(['--config', config, '--seed', '3', '--no-baseline'], io, { settings });
    // Prometheus sees the run while it trains.
    await until(
      async () => ((await query('esper_system_state_packets_total{phase="step"}'))[0]?.value ?? 0) > 0 || undefined,
      60_000,
      'a scrape',
    );
    expect(await running, out.stderr).toBe(0);
    expect(out.stderr).toContain(`live view and metrics at http://127.0.0.1:${nissaPort}/`);

    const names = new Set(
      (await query('count by (__name__) ({__name__=~"esper_.+|tamiyo_.+|nissa_.+"})')).map((r) => r.metric['__name__']),
    );
    for (const name of [
      'esper_training_runs_total',
      'esper_telemetry_packets_total',
      'esper_system_state_packets_total',
      'esper_field_reports_total',
      'esper_simic_training_reward_total',
      'esper_simic_training_iterations_total',
      'tamiyo_gnn_feature_coverage',
      'tamiyo_bsds_quarantine_active',
      'tamiyo_bsds_elevated_risk',
      'nissa_ingest_latency_ms_bucket',
      'esper_run_validation_accuracy',
      'esper_run_seeds',
      'esper_commands_issued_total',
      'esper_bus_lag_ms_bucket',
    ]) {
      expect(names, name).toContain(name);
    }
    expect((await query('esper_training_runs_total'))[0]?.value).toBe(1);
    const accuracy = (await query('esper_run_validation_accuracy'))[0]?.value ?? -1;
    expect(accuracy).toBeGreaterThan(0.4);
    expect(accuracy).toBeLessThanOrEqual(1);
    const telemetry = await query('esper_telemetry_packets_total');
    expect(telemetry.map((r) => r.metric['source'])).toEqual(expect.arrayContaining(['tolaria', 'kasmina']));
    expect((await query('sum(esper_commands_issued_total)'))[0]?.value).toBeGreaterThan(0);
  }, 180_000);
});
