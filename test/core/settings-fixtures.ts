/** Shared fixtures of the settings tests: a temp dir for config files and error helpers. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { ErrorCode } from '../../src/core/errors.js';
import { SettingsError } from '../../src/core/settings-error.js';
import { loadSettings, type LoadSettingsOptions } from '../../src/core/settings.js';
import { thrownBy } from '../support/thrown.js';

export const SECRET = 'correct-horse-battery-staple-42';
export const PASSWORD = 'p4ssw0rd-never-logged';

let dir: string;

/** Gives the calling test file a temp dir for config files, removed after its tests. */
export function useConfigDir(): void {
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'esper-settings-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
}

/** Path of `name` in the config dir. */
export function configPath(name: string): string {
  return path.join(dir, name);
}

/** Writes `content` (an object is JSON-encoded) to a fresh file and returns its path. */
export function writeConfig(name: string, content: unknown): string {
  const file = configPath(name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Runs `fn`, expecting a `SettingsError`, and returns it. */
export function settingsError(fn: () => unknown): SettingsError {
  const error = thrownBy(fn, ErrorCode.SETTINGS_INVALID);
  expect(error).toBeInstanceOf(SettingsError);
  return error as SettingsError;
}

/** Runs `loadSettings`, expecting it to fail, and returns the typed error. */
export function loadError(options: LoadSettingsOptions): SettingsError {
  return settingsError(() => loadSettings(options));
}

/** `<source>:<key>` of every issue, for compact comparisons. */
export function issueKeys(error: SettingsError): string[] {
  return error.issues.map((issue) => `${issue.source}:${issue.key}`);
}
