/**
 * The nested layers of the settings: a JSON config file, and overrides in code, both with
 * the shape of `EsperSettings`.
 */
import { readFileSync } from 'node:fs';
import { formatJsonSyntaxProblem, parseJsonText } from './json-text.js';
import { showValue } from './options.js';
import type { SettingsLayer } from './settings-env.js';
import { SettingsError, type SettingsIssue } from './settings-error.js';
import { unknownMessage } from './settings-keys.js';
import { SETTINGS_DEFINITION } from './settings-schema.js';
import { isGroup, showInput, type SettingsGroup } from './settings-setting.js';

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

function readProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  return `cannot be read (${code ?? (error as Error).message})`;
}

/** The JSON object in `file`, or undefined with the problem pushed to `issues`. */
function readJsonObject(file: string, issues: SettingsIssue[]): Record<string, unknown> | undefined {
  const problem = (message: string): undefined => {
    issues.push({ source: 'file', key: '', file, message });
    return undefined;
  };
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    return problem(readProblem(error));
  }
  // Located by line and column; the text around the error is never shown (it may be a secret).
  const json = parseJsonText(bytes);
  if (!json.ok) return problem(`is not valid JSON (${formatJsonSyntaxProblem(json)})`);
  if (!isPlainObject(json.value)) return problem(`must hold a JSON object, got ${showValue(json.value)}`);
  return json.value;
}

/**
 * The JSON object a config file holds (`esper run --config`, `ESPER_CONFIG_FILE`).
 * @throws SettingsError (`SETTINGS_INVALID`) naming the file when it is missing or unreadable,
 *   is not valid JSON (with line and column), or holds anything but an object (`null`, `42`)
 */
export function readConfigFile(file: string): Record<string, unknown> {
  const issues: SettingsIssue[] = [];
  const value = readJsonObject(file, issues);
  if (value === undefined) throw new SettingsError(issues);
  return value;
}

/** The settings in config file `file`; problems go to `issues`. */
export function readFileLayer(file: string, issues: SettingsIssue[]): SettingsLayer {
  const layer: SettingsLayer = new Map();
  const json = readJsonObject(file, issues);
  if (json !== undefined) readNested(json, layer, (issue) => issues.push({ source: 'file', file, ...issue }));
  return layer;
}

/** Reports one problem of a nested input, without its source. */
export type NestedIssueSink = (issue: Omit<SettingsIssue, 'source' | 'file'>) => void;

/** Walks a nested input (file or overrides) against the tree: unknown keys, bad sections, bad leaves. */
export function readNested(input: object, layer: SettingsLayer, report: NestedIssueSink): void {
  readGroup(input, SETTINGS_DEFINITION, [], layer, report);
}

function readGroup(input: object, group: SettingsGroup, prefix: readonly string[], layer: SettingsLayer, report: NestedIssueSink): void {
  const known = new Set(Object.keys(group));
  for (const [key, value] of Object.entries(input)) {
    const path = [...prefix, key];
    const dotted = path.join('.');
    const node = group[key];
    if (node === undefined || !known.has(key)) {
      report({ key: dotted, message: unknownMessage(key, known) });
      continue;
    }
    if (value === undefined) continue;
    if (isGroup(node)) {
      if (isPlainObject(value)) readGroup(value, node, path, layer, report);
      else report({ key: dotted, settingPath: dotted, message: `expected an object, got ${showInput(value)}` });
      continue;
    }
    const parsed = node.spec.schema.safeParse(value);
    if (parsed.success) layer.set(dotted, parsed.data);
    else {
      report({
        key: dotted,
        settingPath: dotted,
        message: `expected ${node.spec.expected}, got ${node.spec.displayInput(value)}`,
      });
    }
  }
}
