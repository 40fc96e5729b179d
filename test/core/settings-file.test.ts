import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { SettingsIssue } from '../../src/core/settings-error.js';
import { readConfigFile } from '../../src/core/settings-file.js';
import { loadSettings } from '../../src/core/settings.js';
import { configPath, loadError, SECRET, settingsError, useConfigDir, writeConfig } from './settings-fixtures.js';

useConfigDir();

describe('the config file layer', () => {
  it('reads nested groups from the config file', () => {
    const configFile = writeConfig('nested.json', {
      core: { asyncWorker: { maxQueueDepth: 0, defaultDeadlineMs: 1500 }, logLevel: 'warn' },
      tolaria: { rollback: { enabled: true, deadlineMs: 400 } },
    });
    const settings = loadSettings({ env: {}, configFile });
    expect(settings.core.asyncWorker.maxQueueDepth).toBe(0);
    expect(settings.core.asyncWorker.defaultDeadlineMs).toBe(1500);
    expect(settings.core.logLevel).toBe('warn');
    expect(settings.tolaria.rollback).toEqual({
      enabled: true,
      fastCacheMaxMb: 32,
      deadlineMs: 400,
      snapshotSteps: 1,
    });
  });

  it('reports unknown and mistyped keys in the config file with its path', () => {
    const configFile = writeConfig('bad-keys.json', {
      core: { asyncWorker: { maxConcurency: 2, maxQueueDepth: '10' } },
      oona: 'redis://localhost',
      nissa: { httpPort: 70_000 },
      narset: {},
    });
    const error = loadError({ env: {}, configFile });
    expect(error.issues).toEqual([
      {
        source: 'file',
        file: configFile,
        key: 'core.asyncWorker.maxConcurency',
        message: 'unknown setting (did you mean maxConcurrency?)',
      },
      {
        source: 'file',
        file: configFile,
        key: 'core.asyncWorker.maxQueueDepth',
        settingPath: 'core.asyncWorker.maxQueueDepth',
        message: 'expected integer ≥ 0, got "10"',
      },
      {
        source: 'file',
        file: configFile,
        key: 'oona',
        settingPath: 'oona',
        message: 'expected an object, got "redis://localhost"',
      },
      {
        source: 'file',
        file: configFile,
        key: 'nissa.httpPort',
        settingPath: 'nissa.httpPort',
        message: 'expected integer in [0, 65535], got 70000',
      },
      { source: 'file', file: configFile, key: 'narset', message: 'unknown setting' },
    ] satisfies SettingsIssue[]);
    expect(error.message).toContain(`config file ${configFile} at nissa.httpPort: expected integer in [0, 65535], got 70000`);
  });

  it.each([
    ['a trailing comma', '{"nissa": {"httpPort": 9100,}}', 'is not valid JSON (line 1, column 29: property name expected)'],
    ['a missing value on line 3', '{\n  "nissa": {\n    "httpPort": ,\n  }\n}', 'is not valid JSON (line 3, column 17: value expected)'],
    ['an array hole', '{"a": [1,,2]}', 'is not valid JSON (line 1, column 10: value expected)'],
    ['empty', '', 'is not valid JSON (line 1, column 1: value expected)'],
    ['an array', '[1, 2]', 'must hold a JSON object, got an array'],
    ['null', 'null', 'must hold a JSON object, got null'],
    ['a number', '42', 'must hold a JSON object, got 42'],
    ['a string', '"x"', 'must hold a JSON object, got "x"'],
  ])('reports a config file holding %s as a settings error naming the file', (label, text, message) => {
    const configFile = writeConfig(`whole-${label.replace(/\W/g, '-')}.json`, text);
    const error = loadError({ env: {}, configFile });
    expect(error.issues).toEqual([{ source: 'file', file: configFile, key: '', message }]);
    expect(error.message).toContain(`config file ${configFile}: ${message}`);
  });

  it('accepts a UTF-8 byte-order mark (editors write one)', () => {
    const configFile = writeConfig('bom.json', '\uFEFF{"nissa": {"httpPort": 9300}}');
    expect(loadSettings({ env: {}, configFile }).nissa.httpPort).toBe(9300);
  });

  it('reports invalid UTF-8 instead of reading replacement characters', () => {
    const configFile = configPath('latin1.json');
    writeConfigBytes(configFile, [0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]); // {"é":1} in Latin-1
    expect(loadError({ env: {}, configFile }).issues[0]?.message).toBe('is not valid JSON (invalid UTF-8)');
  });

  it('reports a missing config file by name, not as a raw ENOENT', () => {
    const configFile = configPath('missing.json');
    const error = loadError({ env: { ESPER_CONFIG_FILE: configFile } });
    expect(error.issues).toEqual([{ source: 'file', file: configFile, key: '', message: 'does not exist' }]);
  });

  it('reports a directory given as the config file', () => {
    const configFile = configPath('a-directory');
    mkdirSync(configFile);
    expect(loadError({ env: {}, configFile }).issues[0]?.message).toBe('is a directory, not a file');
  });

  it.skipIf(process.getuid?.() === 0)('reports a config file it may not read', () => {
    const configFile = writeConfig('private.json', {});
    chmodSync(configFile, 0o000);
    expect(loadError({ env: {}, configFile }).issues[0]?.message).toBe('cannot be read (permission denied)');
  });

  it('does not echo file text around a JSON syntax error', () => {
    const configFile = writeConfig('secret-syntax.json', `{"security": {"leylineSecret": ${SECRET}}}`);
    const error = loadError({ env: {}, configFile });
    expect(error.message).not.toContain(SECRET.slice(0, 8));
  });
});

describe('readConfigFile', () => {
  it('returns the object a config file holds', () => {
    const file = writeConfig('run.json', { seed: 3, host: { kind: 'mlp' } });
    expect(readConfigFile(file)).toEqual({ seed: 3, host: { kind: 'mlp' } });
  });

  it.each([
    ['null', 'null'],
    ['42', '42'],
    ['bad JSON', '{"seed": 3,,}'],
  ])('throws SETTINGS_INVALID naming the file for %s', (label, text) => {
    const file = writeConfig(`run-${label.replace(/\W/g, '-')}.json`, text);
    const error = settingsError(() => readConfigFile(file));
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({ source: 'file', file, key: '' });
  });

  it('throws SETTINGS_INVALID naming a missing file', () => {
    const file = configPath('no-such-run.json');
    const error = settingsError(() => readConfigFile(file));
    expect(error.issues).toEqual([{ source: 'file', file, key: '', message: 'does not exist' }] satisfies SettingsIssue[]);
    expect(error.message).toContain(file);
  });

  it('never quotes the text around a syntax error', () => {
    const file = writeConfig('run-secret.json', `{"token": ${SECRET}}`);
    expect(settingsError(() => readConfigFile(file)).message).not.toContain(SECRET.slice(0, 8));
  });
});

function writeConfigBytes(file: string, bytes: readonly number[]): void {
  writeFileSync(file, Uint8Array.from(bytes));
}
