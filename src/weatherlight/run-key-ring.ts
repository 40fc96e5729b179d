/**
 * The key ring a run signs with: the configured one (`ESPER_LEYLINE_SECRET` /
 * `ESPER_LEYLINE_KEYS`), else the var dir's local key, created once so that the sheets in
 * Urza verify in later runs.
 */
import type { EsperSettings } from '../core/index.js';
import { KeyRing, openLocalKeyRing } from '../security/index.js';

/**
 * The configured key ring, else `<storage.varDir>/keys/local.key` (created atomically on
 * first use, when `onCreated` is told its path; racing first calls agree on one key).
 * @throws EsperError SECURITY_KEY_RING_INVALID / SECURITY_KEY_FILE_INVALID
 */
export async function runKeyRing(
  settings: Pick<EsperSettings, 'security' | 'storage'>,
  onCreated?: (keyFile: string) => void,
): Promise<KeyRing> {
  const { leylineKeys, leylineSecret } = settings.security;
  if ((leylineKeys ?? '') !== '' || (leylineSecret ?? '') !== '') return KeyRing.fromSettings(settings.security);
  const local = await openLocalKeyRing(settings.storage.varDir);
  if (local.created) onCreated?.(local.path);
  return local.keyRing;
}
