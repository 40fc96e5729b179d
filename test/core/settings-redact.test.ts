import { describe, expect, it } from 'vitest';
import { LEAVES } from '../../src/core/settings-keys.js';
import { redactSettings } from '../../src/core/settings-redact.js';
import { REDACTED } from '../../src/core/settings-setting.js';
import { loadSettings } from '../../src/core/settings.js';
import { PASSWORD, SECRET } from './settings-fixtures.js';

describe('redactSettings', () => {
  it('redacts secrets and URL passwords for logging', () => {
    const settings = loadSettings({
      env: {
        ESPER_LEYLINE_SECRET: SECRET,
        ESPER_OONA_BUS_URL: `redis://esper:${PASSWORD}@10.0.0.5:6379/1`,
      },
    });
    const redacted = redactSettings(settings);
    const text = JSON.stringify(redacted);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(PASSWORD);
    expect(redacted['security']).toMatchObject({ leylineSecret: REDACTED, freshnessWindowMs: 60_000 });
    expect((redacted['security'] as Record<string, unknown>)['leylineKeys']).toBeUndefined();
    expect((redacted['oona'] as Record<string, unknown>)['busUrl']).toBe(`redis://esper:${REDACTED}@10.0.0.5:6379/1`);
    expect(redacted['core']).toEqual(JSON.parse(JSON.stringify(settings.core)) as Record<string, unknown>);
  });

  it('keeps the shape of the settings, every key present, and shows the key ring as redacted too', () => {
    const settings = loadSettings({ env: { ESPER_LEYLINE_KEYS: `a:${SECRET},b:${SECRET}x` } });
    const redacted = redactSettings(settings);
    expect(JSON.stringify(redacted)).not.toContain(SECRET);
    expect((redacted['security'] as Record<string, unknown>)['leylineKeys']).toBe(REDACTED);
    for (const leaf of LEAVES) {
      let node: unknown = redacted;
      for (const key of leaf.path) {
        expect(node, leaf.dotted).toHaveProperty([key]);
        node = (node as Record<string, unknown>)[key];
      }
    }
  });

  it('returns a plain, unfrozen copy that changing does not touch the settings', () => {
    const settings = loadSettings({ env: {} });
    const redacted = redactSettings(settings);
    (redacted['nissa'] as Record<string, unknown>)['httpPort'] = 1;
    expect(settings.nissa.httpPort).toBe(9100);
  });
});
