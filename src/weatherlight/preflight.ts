/**
 * Preflight of the mandatory dependencies, run before any service starts
 * (prototype-tolaria-oona-nissa-weatherlight §5.1 steps 2–3, with Esper's own checks in
 * place of the prototype's Python imports): the bus's Redis answers, a signing key is there
 * and loads, the var dir takes a file, Urza opens. Every check runs and every failure is
 * listed (aggregated, as the prototype did); nothing is left running or open.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, ErrorCode, EsperError, isEsperError, redactUrl, type EsperSettings } from '../core/index.js';
import { pingRedis } from '../oona/index.js';
import { KeyRing, LOCAL_KEY_FILE, openLocalKeyRing } from '../security/index.js';
import { openUrzaLibrary } from '../urza/index.js';

/** The checks, in the order they are reported. */
export const PreflightCheckName = {
  /** The bus's Redis answers PING (only for a `redis://` / `rediss://` bus). */
  REDIS: 'redis',
  /** The key ring a run would sign with loads. */
  SIGNING_KEY: 'signing_key',
  /** `storage.varDir` exists or can be created, and takes a file. */
  VAR_DIR: 'var_dir',
  /** Urza's catalog and artifact directory open. */
  URZA: 'urza',
} as const;

/** Union of {@link PreflightCheckName} values. */
export type PreflightCheckName = (typeof PreflightCheckName)[keyof typeof PreflightCheckName];

/** The outcome of one check. */
export interface PreflightCheck {
  readonly name: PreflightCheckName;
  /** `skipped`: not applicable (a memory bus) or not checkable because another check failed. */
  readonly status: 'passed' | 'failed' | 'skipped';
  /** One line for the operator: what was found, or what is wrong and what to set. */
  readonly message: string;
  /** The error code behind a failure, when there is one. */
  readonly code?: string;
}

/** The outcome of every check. */
export interface PreflightResult {
  /** No check failed. */
  readonly ok: boolean;
  /** Every check, in {@link PreflightCheckName} order. */
  readonly checks: readonly PreflightCheck[];
  /** The failed checks, in the same order. */
  readonly failures: readonly PreflightCheck[];
}

/** Options of {@link runPreflight}. */
export interface PreflightOptions {
  /**
   * Whether a key must be configured (`ESPER_LEYLINE_SECRET` / `ESPER_LEYLINE_KEYS`). When
   * `false`, no configured key means the var dir's local key, which a run creates if it is
   * missing. Services in several processes, maybe on several machines, must share one key,
   * hence the default.
   * @default true for a `redis://` / `rediss://` bus, false for `memory://`
   */
  readonly requireConfiguredKey?: boolean;
  /**
   * Deadline of the Redis PING, connecting included, in ms.
   * @default 2000
   */
  readonly redisTimeoutMs?: number;
}

type PreflightSettings = Pick<EsperSettings, 'oona' | 'security' | 'storage'>;

/**
 * Runs every check and returns them all; never throws for a failed check (see
 * {@link preflight} for the throwing form).
 */
export async function runPreflight(settings: PreflightSettings, options: PreflightOptions = {}): Promise<PreflightResult> {
  const [redis, local] = await Promise.all([checkRedis(settings, options), checkLocal(settings, options)]);
  const checks = [redis, ...local];
  const failures = checks.filter((c) => c.status === 'failed');
  return { ok: failures.length === 0, checks, failures };
}

/**
 * Runs {@link runPreflight} and throws if anything failed.
 * @throws EsperError `WEATHERLIGHT_PREFLIGHT_FAILED` (see {@link preflightError})
 */
export async function preflight(settings: PreflightSettings, options: PreflightOptions = {}): Promise<PreflightResult> {
  const result = await runPreflight(settings, options);
  const error = preflightError(result);
  if (error !== undefined) throw error;
  return result;
}

/**
 * The error of a failed preflight, else `undefined`: `WEATHERLIGHT_PREFLIGHT_FAILED`, its
 * message one line per failure (`  <check>: <message>`), `details.failed` the failed checks'
 * names, comma-separated. The CLI exits 1 with it.
 */
export function preflightError(result: PreflightResult): EsperError | undefined {
  if (result.ok) return undefined;
  const lines = result.failures.map((f) => `  ${f.name}: ${f.message}`);
  return new EsperError(ErrorCode.WEATHERLIGHT_PREFLIGHT_FAILED, `preflight failed:\n${lines.join('\n')}`, {
    details: { failed: result.failures.map((f) => f.name).join(',') },
  });
}

function isRedisUrl(url: string): boolean {
  return /^rediss?(\+cluster)?:/.test(url);
}

async function checkRedis(settings: PreflightSettings, options: PreflightOptions): Promise<PreflightCheck> {
  const url = settings.oona.busUrl;
  const name = PreflightCheckName.REDIS;
  if (!isRedisUrl(url)) return { name, status: 'skipped', message: `the bus is ${redactUrl(url)} (embedded): no Redis needed` };
  try {
    const ms = await pingRedis(url, { timeoutMs: options.redisTimeoutMs ?? 2_000 });
    return { name, status: 'passed', message: `Redis at ${redactUrl(url)} answered PING in ${ms.toFixed(1)} ms` };
  } catch (error) {
    return failed(name, `${errorMessage(error)} (check ESPER_OONA_BUS_URL and that redis-server is running)`, error);
  }
}

/** The var dir, then the key (whose local form lives in it), then Urza (usually in it too). */
async function checkLocal(settings: PreflightSettings, options: PreflightOptions): Promise<PreflightCheck[]> {
  const varDir = path.resolve(settings.storage.varDir);
  const varCheck = await checkVarDir(varDir);
  const keyCheck = await checkKey(settings, varDir, options.requireConfiguredKey ?? isRedisUrl(settings.oona.busUrl));
  const urzaCheck = await checkUrza(settings, varDir, varCheck.status === 'failed');
  return [keyCheck, varCheck, urzaCheck];
}

async function checkVarDir(varDir: string): Promise<PreflightCheck> {
  const name = PreflightCheckName.VAR_DIR;
  const probe = path.join(varDir, `.esper-preflight-${randomUUID()}`);
  try {
    await mkdir(varDir, { recursive: true });
    await writeFile(probe, 'esper preflight probe\n', { flag: 'wx' });
    return { name, status: 'passed', message: `var dir ${varDir} is writable` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? errorMessage(error);
    return failed(name, `var dir ${varDir} is not writable (${code}): set ESPER_STORAGE_VAR_DIR to a writable directory`, error);
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
}

async function checkKey(settings: PreflightSettings, varDir: string, requireConfigured: boolean): Promise<PreflightCheck> {
  const name = PreflightCheckName.SIGNING_KEY;
  const { leylineKeys, leylineSecret } = settings.security;
  if ((leylineKeys ?? '') !== '' || (leylineSecret ?? '') !== '') {
    try {
      const ring = KeyRing.fromSettings(settings.security);
      return { name, status: 'passed', message: `key ring loaded: active key ${ring.activeKeyId}, ${ring.keyIds.length} key(s)` };
    } catch (error) {
      return failed(name, errorMessage(error), error);
    }
  }
  if (requireConfigured) {
    return failed(
      name,
      'no signing key configured: set ESPER_LEYLINE_SECRET (one secret, ≥ 16 bytes) or ESPER_LEYLINE_KEYS (id:secret,...), the same in every process',
    );
  }
  const file = path.resolve(varDir, LOCAL_KEY_FILE);
  try {
    await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      return { name, status: 'passed', message: `no key configured: the run will create the local key ${file}` };
    }
  }
  try {
    // The file exists (or could not be inspected): openLocalKeyRing only reads and checks it.
    await openLocalKeyRing(varDir);
    return { name, status: 'passed', message: `local key ${file} loaded` };
  } catch (error) {
    return failed(name, errorMessage(error), error);
  }
}

async function checkUrza(settings: PreflightSettings, varDir: string, varDirFailed: boolean): Promise<PreflightCheck> {
  const name = PreflightCheckName.URZA;
  const { urzaDatabasePath, urzaArtifactDir } = settings.storage;
  const inside = (p: string): boolean => !path.relative(varDir, path.resolve(p)).startsWith('..');
  if (varDirFailed && (inside(urzaDatabasePath) || inside(urzaArtifactDir))) {
    return { name, status: 'skipped', message: 'not checked: Urza lives in the var dir, which is not writable' };
  }
  try {
    // Opening reads no safety data sheet, so a throwaway key is enough to check storage.
    const probeKeys = new KeyRing([{ keyId: 'preflight', secret: randomBytes(32) }]);
    const library = await openUrzaLibrary(settings, { keyRing: probeKeys });
    await library.close();
    return {
      name,
      status: 'passed',
      message: `Urza opened: catalog ${path.resolve(urzaDatabasePath)}, artifacts ${path.resolve(urzaArtifactDir)}`,
    };
  } catch (error) {
    return failed(name, `${errorMessage(error)} (check ESPER_STORAGE_URZA_DATABASE_PATH / ESPER_STORAGE_URZA_ARTIFACT_DIR)`, error);
  }
}

function failed(name: PreflightCheckName, message: string, cause?: unknown): PreflightCheck {
  const code = isEsperError(cause) ? cause.code : (cause as NodeJS.ErrnoException | undefined)?.code;
  return { name, status: 'failed', message, ...(code === undefined ? {} : { code }) };
}
