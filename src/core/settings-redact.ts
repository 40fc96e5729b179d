/** The log-safe form of the settings (spec 02: log the resolved config once, secrets redacted). */
import { LEAVES, setPath } from './settings-keys.js';
import type { EsperSettings } from './settings-schema.js';

/**
 * A plain copy of `settings` safe to log: secrets read `[redacted]` (or are absent when
 * unset) and URL passwords are replaced. Log it once at start.
 */
export function redactSettings(settings: EsperSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const leaf of LEAVES) {
    let value: unknown = settings;
    for (const key of leaf.path) value = (value as Record<string, unknown> | undefined)?.[key];
    setPath(out, leaf.path, leaf.definition.spec.display(value));
  }
  return out;
}
