/**
 * The environment layer of the settings: each key read from its `ESPER_*` variable, and
 * unknown `ESPER_*` variables reported as likely typos.
 */
import type { SettingsIssue } from './settings-error.js';
import { KNOWN_ENV_VARS, LEAVES, unknownMessage } from './settings-keys.js';

/** Values found in one source, by dotted path. */
export type SettingsLayer = Map<string, unknown>;

/** Reads every key's variable from `env`; problems go to `issues` (values never shown for secrets). */
export function readEnvLayer(
  env: Readonly<Record<string, string | undefined>>,
  unknownEnv: 'error' | 'ignore',
  issues: SettingsIssue[],
): SettingsLayer {
  const layer: SettingsLayer = new Map();
  for (const leaf of LEAVES) {
    const raw = env[leaf.envVar];
    if (raw === undefined) continue;
    const parsed = leaf.definition.spec.envSchema.safeParse(raw);
    if (parsed.success) {
      layer.set(leaf.dotted, parsed.data);
    } else {
      issues.push({
        source: 'env',
        key: leaf.envVar,
        settingPath: leaf.dotted,
        message: `expected ${leaf.definition.spec.expected}, got ${leaf.definition.spec.displayInput(raw)}`,
      });
    }
  }
  if (unknownEnv === 'error') {
    for (const name of Object.keys(env).sort()) {
      if (!name.startsWith('ESPER_') || KNOWN_ENV_VARS.has(name) || env[name] === undefined) continue;
      // The value is not shown: an unknown variable may well be a misspelt secret.
      issues.push({ source: 'env', key: name, message: unknownMessage(name, KNOWN_ENV_VARS) });
    }
  }
  return layer;
}
