import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Gauge, Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/core/index.js';
import {
  alertInputsFromPacket,
  alertRules,
  buildAllDrills,
  forSeconds,
  registerAlertInputs,
  renderPrometheusRules,
  renderPrometheusRuleTests,
  writePrometheusRules,
} from '../../src/nissa/index.js';

const run = promisify(execFile);
const PROMTOOL = '/usr/bin/promtool';
const dir = mkdtempSync(path.join(tmpdir(), 'esper-nissa-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(PROMTOOL, args, { cwd: dir });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

describe('Prometheus rules file', () => {
  it('maps N consecutive samples to for: (N − 1) × the scrape interval', () => {
    expect(alertRules().map((r) => forSeconds(r, 15))).toEqual([30, 30, 0, 15, 0, 0, 30, 0]);
    const text = renderPrometheusRules({ scrapeIntervalSeconds: 10 });
    expect(text).toContain('      - alert: "oona_queue_depth"\n        expr: "esper_oona_queue_depth > 4000"\n        for: 10s\n');
    expect(text).toContain('expr: "tamiyo_gnn_feature_coverage < 0.7"');
  });

  it('passes promtool check rules and promtool test rules (each rule fires, and does not at the threshold or one sample short)', async () => {
    const settings = loadSettings({ env: {} });
    const rules = path.join(dir, 'esper.rules.yml');
    const tests = path.join(dir, 'esper.rules.test.yml');
    writePrometheusRules(rules, settings.nissa, tests);
    const check = await promtool('check', 'rules', rules);
    expect(check.output).toContain('SUCCESS: 8 rules found');
    expect(check.code).toBe(0);
    const test = await promtool('test', 'rules', tests);
    expect(test.output).toContain('SUCCESS');
    expect(test.code).toBe(0);
    const testText = readFileSync(tests, 'utf8');
    for (const rule of alertRules()) {
      expect(testText).toContain(`# ${rule.name}: fires after`);
      expect(testText).toContain(`# ${rule.name}: does not fire on`);
    }
  });

  it('has tests that catch a wrong rule: promtool test rules fails against rules one sample off', async () => {
    const good = alertRules();
    const wrong = good.map((r) => ({ ...r, forSamples: r.forSamples + 1 }));
    writeFileSync(path.join(dir, 'wrong.rules.yml'), renderPrometheusRules({ rules: wrong }));
    writeFileSync(path.join(dir, 'wrong.test.yml'), renderPrometheusRuleTests('wrong.rules.yml', { rules: good }));
    const test = await promtool('test', 'rules', path.join(dir, 'wrong.test.yml'));
    expect(test.code).not.toBe(0);
    expect(test.output).toContain('FAILED');
  });
});

describe('registerAlertInputs', () => {
  it('exposes each rule input as a gauge per source, and leaves the coverage gauge to its owner', async () => {
    const registry = new Registry();
    const coverage = new Gauge({ name: 'tamiyo_gnn_feature_coverage', help: 'owned by the metrics module', registers: [registry] });
    coverage.set(0.42);
    const update = registerAlertInputs(registry);
    for (const drill of buildAllDrills()) {
      for (const packet of drill.fire) update(alertInputsFromPacket(packet), packet.sourceSubsystem);
    }
    const text = await registry.metrics();
    for (const line of [
      'esper_tolaria_epoch_hook_latency_ms{source="tolaria"} 36',
      'esper_kasmina_isolation_violations{source="kasmina"} 6',
      'esper_oona_queue_depth{source="oona"} 8000',
      'esper_tezzeret_compile_retry_count{source="tezzeret"} 2',
      'esper_tamiyo_bsds_hazard_critical_signal{source="tamiyo"} 1',
      'esper_tamiyo_bsds_hazard_high_signal{source="tamiyo"} 1',
      'esper_tamiyo_bsds_elevated_risk_flag{source="tamiyo"} 1',
      'tamiyo_gnn_feature_coverage 0.42',
    ]) {
      expect(text).toContain(line);
    }
  });

  it('bounds the source label: sources past maxSources are reported as other', async () => {
    const registry = new Registry();
    const update = registerAlertInputs(registry, { maxSources: 1 });
    update(new Map([['oona.queue.depth', 1]]), 'a');
    update(new Map([['oona.queue.depth', 2]]), 'b');
    const text = await registry.getSingleMetricAsString('esper_oona_queue_depth');
    expect(text).toContain('esper_oona_queue_depth{source="a"} 1');
    expect(text).toContain('esper_oona_queue_depth{source="other"} 2');
  });
});
