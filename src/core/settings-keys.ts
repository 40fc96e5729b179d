/**
 * The settings tree flattened into keys: each key's dotted path and environment variable
 * (`ESPER_` + the path in SCREAMING_SNAKE_CASE, unless the leaf names its own), for the
 * loader, redaction and the runbook table.
 */
import { SETTINGS_DEFINITION } from './settings-schema.js';
import { isGroup, type AnySetting, type SettingsGroup } from './settings-setting.js';

/** Environment variables that are not settings keys but are known (not typos). */
export const SETTINGS_META_ENV = Object.freeze({
  /** Path of a JSON config file with the same nested shape as {@link EsperSettings}. */
  configFile: 'ESPER_CONFIG_FILE',
});

/** One key of the tree, flattened. */
export interface Leaf {
  readonly path: readonly string[];
  readonly dotted: string;
  readonly envVar: string;
  readonly definition: AnySetting;
}

function screamingSnake(segment: string): string {
  return segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The environment variable of a key path, by the naming rule. */
function envVarFor(path: readonly string[]): string {
  return `ESPER_${path.map(screamingSnake).join('_')}`;
}

function collectLeaves(group: SettingsGroup, prefix: readonly string[], out: Leaf[]): Leaf[] {
  for (const [key, node] of Object.entries(group)) {
    const path = [...prefix, key];
    if (isGroup(node)) {
      collectLeaves(node, path, out);
    } else {
      out.push({
        path,
        dotted: path.join('.'),
        envVar: node.spec.env ?? envVarFor(path),
        definition: node,
      });
    }
  }
  return out;
}

/** Every key, in definition order. */
export const LEAVES: readonly Leaf[] = (() => {
  const leaves = collectLeaves(SETTINGS_DEFINITION, [], []);
  const seen = new Map<string, string>([[SETTINGS_META_ENV.configFile, '(config file)']]);
  for (const leaf of leaves) {
    const clash = seen.get(leaf.envVar);
    if (clash !== undefined) {
      throw new Error(`settings ${clash} and ${leaf.dotted} share env var ${leaf.envVar}`);
    }
    seen.set(leaf.envVar, leaf.dotted);
  }
  return leaves;
})();

/** The variables {@link loadSettings} knows: every key's and {@link SETTINGS_META_ENV}. */
export const KNOWN_ENV_VARS: ReadonlySet<string> = new Set([SETTINGS_META_ENV.configFile, ...LEAVES.map((leaf) => leaf.envVar)]);

/** One settings key, for documentation and `esper config` listings. */
export interface SettingInfo {
  /** Dotted path in {@link EsperSettings} and in the config file (`oona.busUrl`). */
  readonly path: string;
  /** Environment variable that sets it. */
  readonly envVar: string;
  /** What a valid value looks like. */
  readonly expected: string;
  /** The default, as text (`4`, `"memory://"`, `unset`). */
  readonly defaultLabel: string;
  /** Whether the value is redacted in logs. */
  readonly secret: boolean;
}

/** Every settings key, in definition order. */
export function listSettings(): readonly SettingInfo[] {
  return LEAVES.map((leaf) => ({
    path: leaf.dotted,
    envVar: leaf.envVar,
    expected: leaf.definition.spec.expected,
    defaultLabel: leaf.definition.spec.defaultLabel,
    secret: leaf.definition.spec.secret,
  }));
}

/** Sets `value` at `path` in a nested plain object, creating sections as needed. */
export function setPath(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root;
  for (const key of path.slice(0, -1)) {
    node[key] ??= {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1] as string] = value;
}

/** `unknown setting`, with the closest known name as a hint when one is near. */
export function unknownMessage(name: string, candidates: Iterable<string>): string {
  const suggestion = closest(name, candidates);
  return suggestion === undefined ? 'unknown setting' : `unknown setting (did you mean ${suggestion}?)`;
}

/** The candidate within edit distance ⌈len/4⌉ of `name`, if any (typo hints). */
function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.ceil(name.length / 4)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
