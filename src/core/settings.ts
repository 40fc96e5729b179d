/**
 * `loadSettings`: the one configuration object of an Esper process, from overrides,
 * environment, config file and defaults, validated at once (docs/architecture.md, Core).
 */
import { readEnvLayer, type SettingsLayer } from './settings-env.js';
import { SettingsError, type SettingsIssue } from './settings-error.js';
import { readFileLayer, readNested } from './settings-file.js';
import { LEAVES, SETTINGS_META_ENV, setPath } from './settings-keys.js';
import { checkSettingsRules } from './settings-rules.js';
import type { EsperSettings, SettingsOverrides } from './settings-schema.js';

/** Options of {@link loadSettings}. */
export interface LoadSettingsOptions {
  /**
   * The environment to read.
   * @default process.env
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Path of a JSON config file with the same nested shape as {@link EsperSettings}
   * (relative paths resolve against the working directory).
   * @default the `ESPER_CONFIG_FILE` environment variable, else no file
   */
  readonly configFile?: string;
  /** Values that win over every other source (CLI flags, tests). */
  readonly overrides?: SettingsOverrides;
  /**
   * What to do with an `ESPER_*` variable that names no setting: `'error'` (a typo is
   * reported) or `'ignore'`.
   * @default 'error'
   */
  readonly unknownEnv?: 'error' | 'ignore';
}

/**
 * Resolves the settings: `overrides` → environment → config file → defaults, per key.
 * Validates every key, then the cross-field rules (`SETTINGS_RULES`), and throws one
 * {@link SettingsError} (`SETTINGS_INVALID`) listing every problem. The result is deeply
 * frozen.
 */
export function loadSettings(options: LoadSettingsOptions = {}): EsperSettings {
  const env = options.env ?? process.env;
  const issues: SettingsIssue[] = [];

  const envLayer = readEnvLayer(env, options.unknownEnv ?? 'error', issues);
  const configFile = options.configFile ?? env[SETTINGS_META_ENV.configFile];
  let fileLayer: SettingsLayer = new Map();
  if (options.configFile === undefined && configFile === '') {
    const message = 'expected a file path, got ""';
    issues.push({ source: 'env', key: SETTINGS_META_ENV.configFile, message });
  } else if (configFile !== undefined) {
    fileLayer = readFileLayer(configFile, issues);
  }
  const overridesLayer: SettingsLayer = new Map();
  if (options.overrides !== undefined) {
    readNested(options.overrides, overridesLayer, (issue) => issues.push({ source: 'overrides', ...issue }));
  }
  // An invalid value is left out of its layer, so its key resolves to what lower sources
  // say: rules over such a key, or over anything when the whole file failed, are skipped
  // rather than judged on stand-ins.
  const settings = resolve([overridesLayer, envLayer, fileLayer]);
  const fileFailed = issues.some((issue) => issue.key === '' || issue.key === SETTINGS_META_ENV.configFile);
  if (!fileFailed) {
    const invalidPaths = issues.flatMap((issue) => (issue.settingPath === undefined ? [] : [issue.settingPath]));
    issues.push(...checkSettingsRules(settings, invalidPaths));
  }
  if (issues.length > 0) throw new SettingsError(issues);
  return settings;
}

function resolve(layers: readonly SettingsLayer[]): EsperSettings {
  const values = new Map<string, unknown>();
  const partial: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    const layer = layers.find((candidate) => candidate.has(leaf.dotted));
    if (layer === undefined && leaf.definition.spec.derived) continue;
    const value = layer === undefined ? leaf.definition.spec.defaultValue(partial) : layer.get(leaf.dotted);
    values.set(leaf.dotted, value);
    setPath(partial, leaf.path, value);
  }
  // Derived defaults read only keys without derived defaults, all resolved above. The
  // result is rebuilt so its keys keep definition order.
  const root: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    const value = values.has(leaf.dotted) ? values.get(leaf.dotted) : leaf.definition.spec.defaultValue(partial);
    setPath(root, leaf.path, value);
  }
  return deepFreeze(root) as EsperSettings;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
