/**
 * What `esper run`, `esper serve` and `esper up` share before any work starts: their options,
 * run ids and run directories, and the checked settings of a distributed service.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describeError, loadSettings, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { BusTelemetrySink, describeUnpublished, openBusFromSettings, type Bus } from '../oona/index.js';
import type { KeyRing } from '../security/index.js';
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

/** A distributed service's bus, and its telemetry: to stderr and onto the bus. */
export interface ServiceBus {
  readonly bus: Bus;
  /** Every packet to `stderr` (as that sink filters it) and onto the bus, with the priority it carries. */
  readonly telemetry: TelemetrySink;
  /** Flushes the telemetry in flight, then closes the bus. */
  close(): Promise<void>;
}

/**
 * Opens the settings' bus for a service named `name` (its own failures go to `stderr`; a
 * packet the bus could not take is said on the command's stderr).
 */
export function openServiceBus(settings: EsperSettings, keyRing: KeyRing, io: CliIo, name: string, stderr: TelemetrySink): ServiceBus {
  const bus = openBusFromSettings(settings, { keyRing, telemetry: stderr });
  const onBus = new BusTelemetrySink(bus, (packet, error) => io.stderr.write(`${name}: ${describeUnpublished(packet, error)}\n`));
  return {
    bus,
    telemetry: {
      emit(packet) {
        stderr.emit(packet);
        onBus.emit(packet);
      },
    },
    close: () => runCleanup(name, [() => onBus.flush(), () => bus.close()]),
  };
}
