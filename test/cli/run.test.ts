/**
 * `esper run` end to end on a small dataset: the grown run, the baseline, the record and
 * the report, in a temp var dir (Urza, forge WAL and run directory all under it).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRun, type RunReport } from '../../src/cli/run.js';
import { loadSettings } from '../../src/core/index.js';
import { readScalarEvents, type RunReportData } from '../../src/nissa/index.js';
import { openLocalKeyRing } from '../../src/security/index.js';
import { createBsdsVerifier, UrzaLibrary } from '../../src/urza/index.js';
import { gnnConfigFor, GRAPH_RELATIONS, serialisePolicy, TamiyoGnn } from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-run-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function capture() {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) } },
    out: () => out,
    err: () => err,
  };
}

/**
 * Budgets far above anything a loaded 2-core machine needs, so that the decisions of the
 * run (which depend on wall-clock budgets: Tolaria's hook and epoch budgets, Tamiyo's step
 * budget, Kasmina's kernel latency) cannot change under CPU load.
 */
const GENEROUS_BUDGETS = {
  tolaria: { tamiyoTimeoutMs: 120_000, kasminaTimeoutMs: 120_000, epochBudgetMs: 600_000, hookBudgetMs: 60_000 },
  tamiyo: { stepTimeoutMs: 60_000, metadataTimeoutMs: 60_000 },
  kasmina: { kernelLatencyBudgetMs: 60_000 },
} as const;

describe('esper run', () => {
  it('grows and decides a seed, trains the baseline, and writes the record (enums by name, epochs from 1) and the report', async () => {
    const config = path.join(root, 'run.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(config, JSON.stringify({ dataset: 'spirals', hidden: [16, 16], epochs: 12, batchSize: 32, learningRate: 0.01 }));
    const settings = loadSettings({ env: {}, overrides: { ...GENEROUS_BUDGETS, storage: { varDir: path.join(root, 'var') } } });
    const { io, out, err } = capture();
    const code = await runRun(['--config', config, '--seed', '3', '--json'], io, { settings });
    expect(err()).toContain('static baseline');
    expect(code).toBe(0);
    const report = JSON.parse(out()) as RunReport;
    expect(report.config).toMatchObject({ dataset: 'spirals', epochs: 12, seed: 3, policy: 'heuristic' });
    expect(report.interrupted).toBe(false);
    expect(report.grown.steps).toBe(report.baseline?.steps);
    expect(report.grown.finalAccuracy).toBeGreaterThan(0);
    // A seed grew, and the lifecycle decided it (not the end of the run).
    const decided = report.seeds.filter((s) => s.fate === 'FOSSILIZED' || (s.fate === 'CULLED' && s.fateReason !== 'shutdown'));
    expect(decided.length).toBeGreaterThanOrEqual(1);
    expect(decided[0]?.fateStep).toBeGreaterThan(decided[0]?.germinatedStep ?? Infinity);
    expect(report.commands.accepted).toBeGreaterThanOrEqual(1);
    expect(report.commands.accepted).toBe(report.commands.issued);
    expect(report.commands.rejected).toBe(0);
    const record = JSON.parse(await readFile(path.join(report.runDir, 'record.json'), 'utf8')) as {
      interrupted: boolean;
      report: RunReport;
      epochs: { grown: { epoch: number }[] };
      decisions: { epoch: number; reason: unknown }[];
      summary: { lastEpoch: { epoch: number } };
    };
    expect(Object.keys(record)).toEqual(
      expect.arrayContaining(['config', 'seed', 'decisions', 'fieldReports', 'epochs', 'commandVerifier']),
    );
    expect(record.interrupted).toBe(false);
    expect(record.report.seeds.map((s) => s.fate)).toEqual(report.seeds.map((s) => s.fate));
    expect(record.epochs.grown.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(record.summary.lastEpoch.epoch).toBe(12);
    expect(record.decisions.every((d) => typeof d.reason === 'string' && d.epoch >= 1 && d.epoch <= 12)).toBe(true);
    const markdown = await readFile(path.join(report.runDir, 'report.md'), 'utf8');
    expect(markdown).toContain('static baseline');
    expect(markdown).toContain(decided[0]?.fate);
    expect(markdown).not.toContain('Interrupted');
    // report.html beside report.md, with both arms' curves and the decided seed in its swimlane.
    const html = await readFile(path.join(report.runDir, 'report.html'), 'utf8');
    const page = JSON.parse(/id="esper-report-data">(.*?)<\/script>/s.exec(html)?.[1] ?? '') as RunReportData;
    expect(page.arms.map((a) => [a.name, a.epochs.length])).toEqual([
      ['grown', 12],
      ['baseline', 12],
    ]);
    expect(page.seeds.find((s) => s.seedId === decided[0]?.seedId)?.stages.map((s) => s.stage)).toEqual(
      expect.arrayContaining(['GERMINATED', 'TRAINING', decided[0]?.fate]),
    );
    expect(html).toContain(`data-seed="${decided[0]?.seedId}"`);
    // TensorBoard: one event file per arm, each epoch's scalars at the global step of its end.
    for (const arm of ['grown', 'baseline']) {
      const dir = path.join(report.runDir, 'tensorboard', arm);
      const files = await readdir(dir);
      expect(files).toEqual([expect.stringMatching(/^events\.out\.tfevents\.\d+\./)]);
      const { scalars } = await readScalarEvents(path.join(dir, files[0] ?? ''));
      const accuracy = scalars.filter((s) => s.tag === 'validation/accuracy');
      expect(accuracy).toHaveLength(12);
      expect(accuracy.at(-1)?.step).toBe(report.grown.steps);
      expect(scalars.filter((s) => s.tag === 'validation/loss')).toHaveLength(12);
      expect(scalars.filter((s) => s.tag === 'train/loss')).toHaveLength(12);
    }
    expect(Math.fround(report.grown.finalAccuracy)).toBe(
      (
        await readScalarEvents(
          path.join(report.runDir, 'tensorboard', 'grown', (await readdir(path.join(report.runDir, 'tensorboard', 'grown')))[0] ?? ''),
        )
      ).scalars
        .filter((s) => s.tag === 'validation/accuracy')
        .at(-1)?.value,
    );
    // No key configured: the var dir's local key was created (and said so) and verifies the sheets in Urza for later runs.
    const local = await openLocalKeyRing(settings.storage.varDir);
    expect(local.created).toBe(false);
    expect(err()).toContain(local.path);
    await using library = await UrzaLibrary.open({
      rootDir: path.dirname(settings.storage.urzaDatabasePath),
      dbPath: settings.storage.urzaDatabasePath,
      artifactDir: settings.storage.urzaArtifactDir,
      bsdsVerifier: createBsdsVerifier(local.keyRing),
    });
    expect(library.list().filter((entry) => library.getBsds(entry.descriptor.blueprintId) !== undefined).length).toBeGreaterThan(0);
  }, 240_000);

  it.each(['heuristic', 'gnn'] as const)(
    '--policy %s runs to a clean exit with a report and a record',
    async (policy) => {
      const config = path.join(root, `tiny-${policy}.json`);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(config, JSON.stringify({ dataset: 'spirals', hidden: [8], epochs: 2, batchSize: 64 }));
      const settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, `var-${policy}`) } } });
      const { io, out, err } = capture();
      const code = await runRun(['--config', config, '--policy', policy, '--json'], io, { settings });
      expect(err()).not.toMatch(/esper run: .*\[ESPER_/);
      expect(code).toBe(0);
      const report = JSON.parse(out()) as RunReport;
      expect(report.config.policy).toBe(policy);
      expect(report.baseline?.steps).toBe(report.grown.steps);
      const record = JSON.parse(await readFile(path.join(report.runDir, 'record.json'), 'utf8')) as { policy: { name: string } };
      expect(record.policy.name).toBe(policy);
      expect(await readFile(path.join(report.runDir, 'report.md'), 'utf8')).toContain(`${policy} policy`);
      expect(await readFile(path.join(report.runDir, 'report.html'), 'utf8')).toContain(`${policy} policy`);
      expect(await readdir(path.join(report.runDir, 'tensorboard'))).toEqual(['baseline', 'grown']);
    },
    240_000,
  );

  it('--policy learned:<file> runs the policy stored in the file, sampling at the cadence it names; greedy:<file> takes its mode', async () => {
    const { writeFile } = await import('node:fs/promises');
    await initTensorBackend();
    const gnn = new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(9));
    const file = path.join(root, 'learned.bin');
    await writeFile(file, serialisePolicy(gnn, { version: 'simic-test-v3', decisionEveryEpochs: 2 }));
    gnn.dispose();
    const config = path.join(root, 'tiny-learned.json');
    await writeFile(config, JSON.stringify({ dataset: 'spirals', hidden: [8], epochs: 3, batchSize: 64, baseline: false }));
    const settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var-learned') } } });
    const { io, out, err } = capture();
    const code = await runRun(['--config', config, '--policy', `learned:${file}`, '--json', '--no-ui'], io, { settings });
    expect(err()).not.toMatch(/\[ESPER_/);
    expect(code).toBe(0);
    const report = JSON.parse(out()) as RunReport;
    expect(report.config.policy).toBe(`learned:${file}`);
    const record = JSON.parse(await readFile(path.join(report.runDir, 'record.json'), 'utf8')) as {
      policy: { name: string; version: string };
    };
    expect(record.policy).toMatchObject({ name: 'gnn', version: 'simic-test-v3' });

    // greedy:<file> runs the same policy taking its most likely choice at each decision.
    const greedy = capture();
    expect(await runRun(['--config', config, '--policy', `greedy:${file}`, '--json', '--no-ui'], greedy.io, { settings })).toBe(0);
    expect((JSON.parse(greedy.out()) as RunReport).config.policy).toBe(`greedy:${file}`);

    const missing = capture();
    const failed = await runRun(['--config', config, '--policy', `learned:${path.join(root, 'nope.bin')}`, '--no-ui'], missing.io, {
      settings,
    });
    expect(failed).not.toBe(0);
    expect(missing.err()).toContain(path.join(root, 'nope.bin'));
  }, 240_000);

  it('refuses an invalid configuration with exit code 2', async () => {
    const config = path.join(root, 'bad.json');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(config, JSON.stringify({ epochs: 0, wings: 2 }));
    const { io, err } = capture();
    expect(await runRun(['--config', config], io, { settings: loadSettings({ env: {} }) })).toBe(2);
    expect(err()).toContain(`config file ${config} at epochs`);
    expect(err()).toContain('unknown key(s) wings');
  });
});
