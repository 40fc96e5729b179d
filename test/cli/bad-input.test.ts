/**
 * Bad input to every `esper` command ends before any work with exit 2 and one clear message
 * naming the flag, file or path: numbers (`''`, `0x3`, `1e1`, `-1`), unknown flags, config
 * files holding `null`, `42` or bad JSON, a missing config file, an unusable `--out`, and a
 * bad key ring. The effective settings are logged once, with secrets redacted.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { loadSettings } from '../../src/core/index.js';
import { runCommand } from '../../src/cli/command.js';
import { runRun } from '../../src/cli/run.js';
import { runTrain } from '../../src/cli/train.js';
import { capture } from './fixtures/capture.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-cli-bad-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const settings = () => loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') } } });

describe('numeric flags', () => {
  it.each([
    ['run', ['--seed', ''], '--seed must be an integer ≥ 0, got ""'],
    ['run', ['--seed', '0x3'], '--seed must be an integer ≥ 0, got "0x3"'],
    ['run', ['--seed', '1e1'], '--seed must be an integer ≥ 0, got "1e1"'],
    ['run', ['--epochs', '-1'], '--epochs must be an integer in [1, 1000], got "-1"'],
    ['run', ['--epochs', '1001'], '--epochs must be an integer in [1, 1000], got "1001"'],
    ['train', ['--epochs', '-1'], '--epochs must be an integer ≥ 1, got "-1"'],
    ['train', ['--seed', '0x3'], '--seed must be an integer ≥ 0, got "0x3"'],
    ['train', ['--lr', '-0.5'], '--lr must be a number > 0, got "-0.5"'],
    ['command', ['cull', '--run', 'r', '--seed', 's', '--timeout', '-1'], '--timeout must be a number > 0, got "-1"'],
  ])('esper %s %j exits 2 naming the flag, with the usage line', async (command, argv, message) => {
    const { out, io } = capture();
    expect(await main([command, ...argv], io)).toBe(2);
    expect(out.stderr).toContain(`esper ${command}: ${message}\n`);
    expect(out.stderr).toContain(`Usage: esper ${command} `);
    expect(out.stderr).not.toContain('ambiguous');
    expect(out.stdout).toBe('');
  });

  it.each([['run'], ['train'], ['command']])('esper %s exits 2 for an unknown flag, with the usage line', async (command) => {
    const { out, io } = capture();
    expect(await main([command, '--wings', '2'], io)).toBe(2);
    expect(out.stderr).toMatch(/Unknown option '--wings'/);
    expect(out.stderr).toContain(`Usage: esper ${command} `);
  });

  it('esper with an unknown command exits 2 with the usage line', async () => {
    const { out, io } = capture();
    expect(await main(['grow'], io)).toBe(2);
    expect(out.stderr).toContain('Usage: esper <run|up|serve|train|study|learn|command>');
  });
});

describe('esper run --config and --out', () => {
  it.each([
    ['null', 'null', 'must hold a JSON object, got null'],
    ['42', '42', 'must hold a JSON object, got 42'],
    ['bad JSON', '{"epochs": 3,', 'is not valid JSON'],
  ])('refuses a config file holding %s with exit 2, naming the file', async (name, text, message) => {
    const file = path.join(root, `config-${name.replace(' ', '-')}.json`);
    await writeFile(file, text);
    const { out, io } = capture();
    expect(await runRun(['--config', file], io, { settings: settings() })).toBe(2);
    expect(out.stderr).toContain(`config file ${file}: ${message}`);
  });

  it('refuses a missing config file with exit 2, naming it (no raw ENOENT)', async () => {
    const file = path.join(root, 'no-such.json');
    const { out, io } = capture();
    expect(await runRun(['--config', file], io, { settings: settings() })).toBe(2);
    expect(out.stderr).toContain(`config file ${file}: does not exist`);
    expect(out.stderr).not.toContain('ENOENT');
  });

  it('refuses an --out that cannot be a directory with exit 2, naming it (no raw ENOTDIR/EEXIST), before any work', async () => {
    const file = path.join(root, 'a-file');
    await writeFile(file, 'x');
    for (const out of [file, path.join(file, 'run')]) {
      const c = capture();
      expect(await runRun(['--out', out], c.io, { settings: settings() })).toBe(2);
      expect(c.out.stderr).toContain(`esper run: --out ${out} cannot be used: a file is in the way (not a directory)\n`);
      expect(c.out.stderr).not.toMatch(/ENOTDIR|EEXIST|blueprints:/);
    }
  });
});

describe('key ring and settings', () => {
  const badKeys = () =>
    loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var-keys') }, security: { leylineKeys: 'no-colon-here' } } });

  it('a bad key ring is a settings error: exit 2 from esper run, esper train --grow and esper command', async () => {
    const run = capture();
    expect(await runRun([], run.io, { settings: badKeys() })).toBe(2);
    expect(run.out.stderr).toContain('ESPER_SECURITY_KEY_RING_INVALID');
    const train = capture();
    expect(await runTrain(['--dataset', 'xor', '--grow'], train.io, { settings: badKeys() })).toBe(2);
    expect(train.out.stderr).toContain('ESPER_SECURITY_KEY_RING_INVALID');
    const redis = loadSettings({
      env: {},
      overrides: { oona: { busUrl: 'redis://127.0.0.1:1' }, security: { leylineKeys: 'no-colon-here' } },
    });
    const command = capture();
    expect(await runCommand(['cull', '--run', 'r', '--seed', 's'], command.io, { settings: redis })).toBe(2);
    expect(command.out.stderr).toContain('ESPER_SECURITY_KEY_RING_INVALID');
  });

  it('logs the effective settings once at start, with the secret redacted', async () => {
    const secret = 'do-not-print-this-secret-0123456789';
    const withSecret = loadSettings({
      env: {},
      overrides: { storage: { varDir: path.join(root, 'var-secret') }, security: { leylineSecret: secret } },
    });
    const { out, io } = capture();
    expect(await runTrain(['--dataset', 'xor', '--epochs', '1', '--grow'], io, { settings: withSecret })).toBe(0);
    const lines = out.stderr.split('\n').filter((line) => line.startsWith('esper train: settings '));
    expect(lines).toHaveLength(1);
    const logged = JSON.parse((lines[0] as string).slice('esper train: settings '.length)) as { security: Record<string, unknown> };
    expect(logged.security['leylineSecret']).toBe('[redacted]');
    expect(out.stderr + out.stdout).not.toContain(secret);
  }, 120_000);
});
