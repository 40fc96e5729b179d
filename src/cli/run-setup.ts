/**
 * What `esper run`, `esper serve` and `esper up` share before any work starts: their options,
 * run ids and run directories, and the checked settings of a distributed service.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describeError, loadSettings, type EsperSettings } from '../core/index.js';
import { preflight } from '../weatherlight/index.js';
import { logSettings, UsageError, type CliIo } from './scaffold.js';

/** Options of `runRun`, `runServe` and `runDistributed` beyond the arguments (tests inject these). */
export interface RunRunOptions {
  /** Stops the run at the next step boundary. @default SIGINT/SIGTERM */
  readonly signal?: AbortSignal;
  /** Settings to use. @default loadSettings() */
  readonly settings?: EsperSettings;
}

/** A new run id: `<prefix>-<UTC stamp>-<4 hex>`. */
export function newRunId(prefix = 'run'): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return `${prefix}-${stamp}-${randomBytes(2).toString('hex')}`;
}

/** What a file-system error says about a path, in words. */
function pathProblem(error: unknown): string {
  switch ((error as NodeJS.ErrnoException | null)?.code) {
    case 'ENOTDIR':
    case 'EEXIST':
      return 'a file is in the way (not a directory)';
    case 'ENOENT':
      return 'its parent does not exist';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EROFS':
      return 'read-only file system';
    default:
      return describeError(error);
  }
}

/**
 * Creates the run directory (`--out`, else `<storage.varDir>/runs/<run id>`) and checks it
 * is writable, before any work starts.
 * @throws UsageError naming the path
 */
export async function prepareRunDir(out: string | undefined, settings: EsperSettings, runId: string): Promise<string> {
  const dir = out ?? path.join(settings.storage.varDir, 'runs', runId);
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    const what = out === undefined ? `run directory ${dir} (under storage.varDir)` : `--out ${dir}`;
    throw new UsageError(`${what} cannot be used: ${pathProblem(error)}`, { cause: error });
  }
  return dir;
}

/**
 * The settings of a distributed service, checked before anything starts: a Redis bus, and
 * a preflight (Redis answers, a configured key loads, the var dir takes a file, Urza opens).
 * @throws UsageError for a memory bus; EsperError WEATHERLIGHT_PREFLIGHT_FAILED
 */
export async function distributedSettings(io: CliIo, command: string, options: RunRunOptions): Promise<EsperSettings> {
  const loaded = options.settings ?? loadSettings();
  const settings: EsperSettings = { ...loaded, core: { ...loaded.core, latencyBudgets: 'observe' } };
  if (settings.oona.busUrl.startsWith('memory:')) {
    throw new UsageError(
      `${command} runs services in several processes: set ESPER_OONA_BUS_URL=redis://host:port (the bus is ${settings.oona.busUrl})`,
    );
  }
  logSettings(io, command, settings);
  await preflight(settings);
  return settings;
}
