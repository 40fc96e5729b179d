/**
 * Weatherlight benchmark (`npm run bench:weatherlight`): what running distributed costs on
 * one host. Progress goes to stderr; the last line of stdout is one JSON object.
 *
 * 1. **Per-step overhead, distributed vs embedded.** The same small growing run as
 *    `esper run` (spirals, MLP 16-16, batch 32, Adam 0.01, `esper run`'s lifecycle lengths and
 *    heuristic pace, same seed) is trained `rounds` times each way, interleaved (embedded,
 *    distributed, embedded, …) so drift of the machine hits both alike:
 *    - `embedded`: Tamiyo in this process on an in-process (`memory://`) bus, lockstep
 *      control (`openGrowingRun` with the heuristic policy) — `esper run`;
 *    - `distributed`: the trainer here on a Redis bus, its `ControlLink` in `async` mode,
 *      announcing the run, with its telemetry on the bus too (`BusTelemetrySink`), and Tamiyo
 *      a `TamiyoServer` in a **child process** (`esper serve tamiyo`, started once, serving
 *      every distributed round) — `esper run --distributed` without the supervisor.
 *      `tamiyo: 'in-process'` runs the server in this process instead (smoke test).
 *    Figures: median step wall time of each (Tolaria's `StepReport.stepMs`, every step of
 *    every round), their ratio, the trainer's controller and executor time per step
 *    (`TrainingSummary.controlPlaneMs`), seeds grown and commands received in each.
 * 2. **Command round trip.** From the trainer side's `ControlLink.evaluateStep` (the state
 *    packet is sealed and published, not waited for) to the command being **received in
 *    Kasmina's `CommandInbox`** (queued; it applies at the next step boundary, which adds up
 *    to one step plus Kasmina's apply — see `bench:kasmina`). The controller is a bench
 *    fixture that answers every packet with a signed PAUSE through Tamiyo's real
 *    `ControlResponder`. One sample at a time, nothing else running, both sides in this
 *    process: over Redis (two buses, two connections) and, as the baseline of the same run,
 *    over one in-process bus.
 * 3. **Supervisor restart after SIGKILL.** A `Supervisor` with one process service (a tiny
 *    node script that prints `ready`), fixed backoff (no jitter): SIGKILL the child, time to
 *    the next child's `ready`, minus the backoff; beside it, the same script spawned
 *    directly (spawn → `ready`), the floor of any restart.
 *
 * Redis: `redisUrl`, else `ESPER_TEST_REDIS_URL`, else a private `redis-server` on a free port
 * (no persistence) that the bench starts and stops. Keys use a unique prefix, deleted after.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { AsyncWorker, loadSettings, optionChecks, runCleanup, type EsperSettings, type TelemetrySink } from '../src/core/index.js';
import { buildOperatorCommand, CommandInbox, OperatorAction } from '../src/kasmina/index.js';
import { AdaptationCommandSchema, SystemStatePacketSchema, type AdaptationCommand } from '../src/leyline/index.js';
import { BusTelemetrySink, openBusFromSettings, type Bus } from '../src/oona/index.js';
import { HmacSigner, KeyRing } from '../src/security/index.js';
import { ControlResponder } from '../src/tamiyo/index.js';
import { initTensorBackend } from '../src/tensor/index.js';
import {
  CommandOutcomeStatus,
  createHost,
  createTrainer,
  loadDataset,
  LrSchedulePolicy,
  type Controller,
  type Dataset,
} from '../src/tolaria/index.js';
import {
  ControlLink,
  EXPERIMENT_HEURISTIC,
  EXPERIMENT_LIFECYCLE,
  openGrowingRun,
  openTamiyoServer,
  Supervisor,
  type TamiyoServer,
} from '../src/weatherlight/index.js';
import { deleteKeysWithPrefix, PrivateRedisServer } from '../test/support/redis-server.js';
import { quantile } from './stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BENCH_SECRET = 'esper-bench-weatherlight-secret-0123456789';

/** The growing run both arms train (as test/cli/run.test.ts). */
const RUN = Object.freeze({ dataset: 'spirals', hidden: [16, 16], batchSize: 32, learningRate: 0.01, seed: 3 });

/** Options of {@link runWeatherlightBench}. */
export interface WeatherlightBenchOptions {
  /** Redis to use. @default `ESPER_TEST_REDIS_URL`, else a private redis-server started here */
  readonly redisUrl: string | undefined;
  /** Where the distributed arm's TamiyoServer runs. @default 'child' (`esper serve tamiyo`) */
  readonly tamiyo: 'child' | 'in-process';
  /** Epochs of each training run (spirals: 32 steps of 32 per epoch). @default 12 */
  readonly epochs: number;
  /** Interleaved rounds (one embedded and one distributed run each). @default 5 */
  readonly rounds: number;
  /** Epochs of the embedded warm-up run (JIT, wasm, Urza provisioning), not measured. @default 1 */
  readonly warmupEpochs: number;
  /** Timed command round trips per bus. @default 500 */
  readonly roundTrips: number;
  /** Untimed round trips first. @default 50 */
  readonly roundTripWarmup: number;
  /** SIGKILLs of the supervised child. @default 9 */
  readonly restarts: number;
  /** The supervisor's backoff before each restart (fixed: base = cap, no jitter), in ms. @default 200 */
  readonly restartBackoffMs: number;
  /** Progress lines. @default stderr */
  readonly log: (message: string) => void;
}

/** The documented protocol. */
export const WEATHERLIGHT_BENCH_DEFAULTS: WeatherlightBenchOptions = Object.freeze({
  redisUrl: undefined,
  tamiyo: 'child',
  epochs: 12,
  rounds: 5,
  warmupEpochs: 1,
  roundTrips: 500,
  roundTripWarmup: 50,
  restarts: 9,
  restartBackoffMs: 200,
  log: (message: string) => {
    process.stderr.write(`${message}\n`);
  },
});

/** Merges `options` over the defaults and validates them, naming the bad field. */
export function resolveWeatherlightBenchOptions(options: Partial<WeatherlightBenchOptions> = {}): WeatherlightBenchOptions {
  const resolved = { ...WEATHERLIGHT_BENCH_DEFAULTS, ...options };
  const check = optionChecks('WeatherlightBenchOptions');
  check.oneOf('tamiyo', resolved.tamiyo, ['child', 'in-process'] as const);
  for (const field of ['epochs', 'rounds', 'roundTrips', 'restarts'] as const) check.integer(field, resolved[field], { min: 1 });
  for (const field of ['warmupEpochs', 'roundTripWarmup'] as const) check.integer(field, resolved[field], { min: 0 });
  check.integer('restartBackoffMs', resolved.restartBackoffMs, { min: 1 });
  return resolved;
}

// ---------------------------------------------------------------- statistics

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

/** p50 / p95 / max of millisecond samples. */
export interface LatencyMs {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly max: number;
}

function latency(samples: readonly number[]): LatencyMs {
  return {
    n: samples.length,
    p50: round(quantile(samples, 0.5)),
    p95: round(quantile(samples, 0.95)),
    max: round(samples.reduce((m, x) => Math.max(m, x), 0)),
  };
}

/** Null-safe: NaN (no samples) becomes null in JSON anyway; keep it a number here. */
const ratioOf = (a: number, b: number): number => round(a / b);

// ---------------------------------------------------------------- environment

interface Environment {
  readonly root: string;
  readonly settings: EsperSettings;
  readonly keyRing: KeyRing;
  readonly redisUrl: string;
  readonly streamPrefix: string;
  readonly log: (message: string) => void;
}

const quiet: TelemetrySink = { emit: () => undefined };

async function openEnvironment(options: WeatherlightBenchOptions): Promise<{ env: Environment; close(): Promise<void> }> {
  const root = await mkdtemp(path.join(tmpdir(), 'esper-bench-weatherlight-'));
  const cleanup: (() => Promise<void>)[] = [() => rm(root, { recursive: true, force: true })];
  try {
    let redisUrl = options.redisUrl ?? process.env['ESPER_TEST_REDIS_URL'];
    if (redisUrl === undefined) {
      const server = await PrivateRedisServer.start({ persistent: false });
      cleanup.unshift(() => server.dispose());
      redisUrl = server.url;
      options.log(`started a private redis-server at ${redisUrl}`);
    }
    const streamPrefix = `esper-bench-wl-${randomUUID().slice(0, 8)}:`;
    const url = redisUrl;
    cleanup.unshift(async () => {
      const redis = new Redis(url);
      try {
        await deleteKeysWithPrefix(redis, streamPrefix);
      } finally {
        await redis.quit();
      }
    });
    const loaded = loadSettings({
      env: {},
      overrides: {
        storage: { varDir: path.join(root, 'var') },
        oona: { busUrl: redisUrl, streamPrefix },
        security: { leylineSecret: BENCH_SECRET },
      },
    });
    // As `esper run`: latency budgets are observed, not enforced.
    const settings: EsperSettings = { ...loaded, core: { ...loaded.core, latencyBudgets: 'observe' } };
    const keyRing = KeyRing.fromSettings(settings.security);
    return {
      env: { root, settings, keyRing, redisUrl, streamPrefix, log: options.log },
      close: () => runCleanup('weatherlight bench', cleanup),
    };
  } catch (error) {
    await runCleanup('weatherlight bench', cleanup);
    throw error;
  }
}

// ---------------------------------------------------------------- 1. per-step overhead

/** One training run's figures. */
export interface ArmRun {
  readonly steps: number;
  readonly stepMedianMs: number;
  readonly wallS: number;
  readonly controllerMsPerStep: number;
  readonly executorMsPerStep: number;
  readonly seedsGrown: number;
  readonly commandsReceived: number;
  readonly finalAccuracy: number;
}

interface ArmSamples {
  readonly stepMs: number[];
  readonly runs: ArmRun[];
  controllerMs: number;
  executorMs: number;
}

/** Trains the growing run once, embedded or distributed (the server must be serving). */
async function trainOnce(
  env: Environment,
  dataset: Dataset,
  mode: 'embedded' | 'distributed',
  epochs: number,
  samples?: ArmSamples,
): Promise<ArmRun> {
  const { settings, keyRing } = env;
  const runId = `bench-${mode}-${randomUUID().slice(0, 8)}`;
  const bus = mode === 'distributed' ? openBusFromSettings(settings, { keyRing, telemetry: quiet }) : undefined;
  // `esper run --distributed` sends the trainer's telemetry onto the bus too.
  const busSink = bus === undefined ? undefined : new BusTelemetrySink(bus, () => undefined);
  const telemetry: TelemetrySink = busSink ?? quiet;
  const host = createHost('mlp', {
    inputShape: dataset.inputShape,
    numClasses: dataset.numClasses,
    seed: RUN.seed,
    hidden: [...RUN.hidden],
    hostId: 'grown',
  });
  const worker = new AsyncWorker({ name: `bench-${mode}`, ...settings.core.asyncWorker });
  const runSettings: EsperSettings = { ...settings, kasmina: { ...settings.kasmina, ...EXPERIMENT_LIFECYCLE } };
  const common = { host, trainingRunId: runId, telemetry, keyRing, seed: RUN.seed };
  const cleanup: (false | (() => Promise<void> | void))[] = [];
  try {
    const run =
      bus === undefined
        ? await openGrowingRun(runSettings, { ...common, policy: 'heuristic', heuristic: EXPERIMENT_HEURISTIC })
        : await openGrowingRun(runSettings, { ...common, controller: 'remote', bus });
    cleanup.push(() => run.close('run_completed'));
    const stepsPerEpoch = Math.ceil(dataset.train.size / RUN.batchSize);
    const stepMs: number[] = [];
    const trainer = createTrainer(settings, {
      trainingRunId: runId,
      host,
      dataset,
      epochs,
      batchSize: RUN.batchSize,
      seed: RUN.seed,
      optimizer: { kind: 'adam', learningRate: RUN.learningRate },
      lrSchedule: { policy: LrSchedulePolicy.COSINE, totalSteps: Math.max(1, epochs * stepsPerEpoch), warmupSteps: 0 },
      worker,
      telemetry,
      ...run.collaborators,
      onStep: (r) => stepMs.push(r.stepMs),
    });
    cleanup.unshift(() => trainer.dispose());
    const started = performance.now();
    const summary = await trainer.run();
    const wallS = (performance.now() - started) / 1000;
    const steps = summary.globalStep;
    const figures: ArmRun = {
      steps,
      stepMedianMs: round(quantile(stepMs, 0.5)),
      wallS: round(wallS, 2),
      controllerMsPerStep: round(summary.controlPlaneMs.controller / steps, 4),
      executorMsPerStep: round(summary.controlPlaneMs.executor / steps, 4),
      seedsGrown: run.seedReports().length,
      commandsReceived: run.inbox.stats().received,
      finalAccuracy: round(summary.lastEpoch?.validationAccuracy ?? 0),
    };
    if (samples !== undefined) {
      samples.stepMs.push(...stepMs);
      samples.runs.push(figures);
      samples.controllerMs += summary.controlPlaneMs.controller;
      samples.executorMs += summary.controlPlaneMs.executor;
    }
    return figures;
  } finally {
    await runCleanup('bench training run', [
      ...cleanup,
      () => worker.close(),
      () => host.dispose(),
      busSink !== undefined && (() => busSink.flush()),
      bus !== undefined && (() => bus.close()),
    ]);
  }
}

/** A TamiyoServer for the distributed arm: `esper serve tamiyo` in a child process, or here. */
async function startTamiyo(env: Environment, where: WeatherlightBenchOptions['tamiyo']): Promise<{ close(): Promise<void> }> {
  const { settings, keyRing } = env;
  const fieldReportDir = path.join(settings.storage.varDir, 'tamiyo', 'field-reports');
  if (where === 'in-process') {
    const bus = openBusFromSettings(settings, { keyRing, telemetry: quiet });
    let server: TamiyoServer | undefined;
    try {
      server = await openTamiyoServer(settings, {
        bus,
        keyRing,
        telemetry: quiet,
        policy: 'heuristic',
        heuristic: EXPERIMENT_HEURISTIC,
        fieldReportDir,
      });
      await server.start();
    } catch (error) {
      await runCleanup('bench tamiyo', [server !== undefined && (() => (server as TamiyoServer).close()), () => bus.close()]);
      throw error;
    }
    const started = server;
    return { close: () => runCleanup('bench tamiyo', [() => started.close(), () => bus.close()]) };
  }
  const entry = path.join(env.root, 'esper-entry.mjs');
  await writeFile(
    entry,
    `import { main } from ${JSON.stringify(pathToFileURL(path.join(REPO_ROOT, 'src/cli/main.ts')).href)};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', 'tamiyo'], {
    cwd: REPO_ROOT,
    env: {
      ...withoutEsperVariables(process.env),
      ESPER_OONA_BUS_URL: env.redisUrl,
      ESPER_OONA_STREAM_PREFIX: env.streamPrefix,
      ESPER_LEYLINE_SECRET: BENCH_SECRET,
      ESPER_STORAGE_VAR_DIR: settings.storage.varDir,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`esper serve tamiyo did not start within 60 s:\n${stderr}`)), 60_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8_000);
      if (stderr.includes('serving every run')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`esper serve tamiyo exited (code ${code}):\n${stderr}`));
    });
  });
  env.log(`esper serve tamiyo: pid ${child.pid}`);
  return {
    close: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The environment without `ESPER_*` variables, so the child's settings are exactly those given. */
function withoutEsperVariables(environment: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(environment).filter(([name]) => !name.startsWith('ESPER_')));
}

/** Figures of one arm over all its rounds. */
export interface ArmFigures {
  readonly steps: number;
  readonly stepMedianMs: number;
  readonly stepP95Ms: number;
  readonly controllerMsPerStep: number;
  readonly executorMsPerStep: number;
  readonly seedsGrown: readonly number[];
  readonly commandsReceived: readonly number[];
  readonly finalAccuracy: readonly number[];
  readonly runs: readonly ArmRun[];
}

function armFigures(samples: ArmSamples): ArmFigures {
  const steps = samples.stepMs.length;
  return {
    steps,
    stepMedianMs: round(quantile(samples.stepMs, 0.5)),
    stepP95Ms: round(quantile(samples.stepMs, 0.95)),
    controllerMsPerStep: round(samples.controllerMs / steps, 4),
    executorMsPerStep: round(samples.executorMs / steps, 4),
    seedsGrown: samples.runs.map((r) => r.seedsGrown),
    commandsReceived: samples.runs.map((r) => r.commandsReceived),
    finalAccuracy: samples.runs.map((r) => r.finalAccuracy),
    runs: samples.runs,
  };
}

async function measureSteps(env: Environment, options: WeatherlightBenchOptions) {
  await initTensorBackend();
  const dataset = await loadDataset(RUN.dataset, {
    layout: 'flat',
    seed: RUN.seed,
    cacheDirectory: path.join(env.settings.storage.varDir, 'datasets'),
  });
  if (options.warmupEpochs > 0) {
    env.log(`warm-up: embedded, ${options.warmupEpochs} epoch(s) (provisions Urza)`);
    await trainOnce(env, dataset, 'embedded', options.warmupEpochs);
  }
  const tamiyo = await startTamiyo(env, options.tamiyo);
  const embedded: ArmSamples = { stepMs: [], runs: [], controllerMs: 0, executorMs: 0 };
  const distributed: ArmSamples = { stepMs: [], runs: [], controllerMs: 0, executorMs: 0 };
  try {
    for (let r = 1; r <= options.rounds; r += 1) {
      for (const [mode, samples] of [
        ['embedded', embedded],
        ['distributed', distributed],
      ] as const) {
        const run = await trainOnce(env, dataset, mode, options.epochs, samples);
        env.log(
          `round ${r}/${options.rounds} ${mode}: ${run.steps} steps, median ${run.stepMedianMs} ms, controller ${run.controllerMsPerStep} ms/step, ${run.seedsGrown} seeds, ${run.wallS} s`,
        );
      }
    }
  } finally {
    await tamiyo.close();
  }
  const e = armFigures(embedded);
  const d = armFigures(distributed);
  return {
    protocol: {
      ...RUN,
      epochs: options.epochs,
      rounds: options.rounds,
      interleaved: true,
      statistic: 'median over every step of every round',
      tamiyo: options.tamiyo,
    },
    embedded: e,
    distributed: d,
    stepRatio: ratioOf(d.stepMedianMs, e.stepMedianMs),
    stepOverheadMs: round(d.stepMedianMs - e.stepMedianMs),
    controllerRatio: ratioOf(d.controllerMsPerStep, e.controllerMsPerStep),
  };
}

// ---------------------------------------------------------------- 2. command round trip

/** A controller (bench fixture) that answers every packet with a signed PAUSE of a seed that does not exist. */
function pauseEveryPacket(keyRing: KeyRing, runId: string): Controller {
  const signer = new HmacSigner(keyRing);
  let n = 0;
  const command = (): Promise<AdaptationCommand> => {
    n += 1;
    const unsigned = buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId: runId, seedId: `ghost-${n}`, issuedBy: 'bench' });
    return Promise.resolve(signer.sign(AdaptationCommandSchema, create(AdaptationCommandSchema, unsigned)));
  };
  return { evaluateStep: command, evaluateEpoch: command };
}

/** Round trips over `trainerBus` → `controllerBus` (the same bus for the in-process baseline). */
async function roundTrips(env: Environment, trainerBus: Bus, controllerBus: Bus, options: WeatherlightBenchOptions): Promise<number[]> {
  const runId = `bench-rtt-${randomUUID().slice(0, 8)}`;
  const inbox = new CommandInbox({ bus: trainerBus, trainingRunId: runId, telemetry: quiet });
  const responder = new ControlResponder({
    bus: controllerBus,
    controller: pauseEveryPacket(env.keyRing, runId),
    trainingRunId: runId,
    telemetry: quiet,
  });
  const link = new ControlLink({ bus: trainerBus, inbox, mode: 'async', timeoutMs: 5_000 });
  try {
    await inbox.start();
    await responder.start();
    const never = new AbortController();
    const samples: number[] = [];
    const total = options.roundTripWarmup + options.roundTrips;
    for (let i = 0; i < total; i += 1) {
      const packet = create(SystemStatePacketSchema, { trainingRunId: runId, packetId: `rtt-${i}`, globalStep: BigInt(i) });
      const started = performance.now();
      await link.evaluateStep(packet, { signal: never.signal });
      await inbox.waitForReceived(i + 1);
      if (i >= options.roundTripWarmup) samples.push(performance.now() - started);
      // Hand the command out and acknowledge it, as the next step would.
      const command = await inbox.evaluateStep(packet, { signal: never.signal });
      if (command !== undefined) inbox.commandOutcome({ commandId: command.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' });
    }
    return samples;
  } finally {
    await runCleanup('bench round trip', [() => responder.close(), () => inbox.close()]);
  }
}

async function measureRoundTrips(env: Environment, options: WeatherlightBenchOptions) {
  const { settings, keyRing } = env;
  const memory = openBusFromSettings({ oona: { ...settings.oona, busUrl: 'memory://' } }, { keyRing, telemetry: quiet });
  const trainerBus = openBusFromSettings(settings, { keyRing, telemetry: quiet });
  const controllerBus = openBusFromSettings(settings, { keyRing, telemetry: quiet });
  try {
    // Memory, Redis, memory: drift of the machine shows as a gap between the two memory halves.
    const memoryFirst = await roundTrips(env, memory, memory, { ...options, roundTrips: Math.ceil(options.roundTrips / 2) });
    const redis = latency(await roundTrips(env, trainerBus, controllerBus, options));
    const memorySecond = await roundTrips(env, memory, memory, { ...options, roundTrips: Math.max(1, Math.floor(options.roundTrips / 2)) });
    const memoryAll = latency([...memoryFirst, ...memorySecond]);
    env.log(`round trip: redis p50 ${redis.p50} ms p95 ${redis.p95} ms; memory p50 ${memoryAll.p50} ms p95 ${memoryAll.p95} ms`);
    return {
      measured:
        'ControlLink.evaluateStep (packet sealed + published, async mode) → command received in the CommandInbox; controller: a fixture answering every packet with a signed PAUSE through ControlResponder; both sides in this process, one round trip at a time',
      redis,
      memory: memoryAll,
      memoryHalvesP50: [round(quantile(memoryFirst, 0.5)), round(quantile(memorySecond, 0.5))],
      p50Ratio: ratioOf(redis.p50, memoryAll.p50),
    };
  } finally {
    await runCleanup('bench round trip buses', [() => trainerBus.close(), () => controllerBus.close(), () => memory.close()]);
  }
}

// ---------------------------------------------------------------- 3. supervisor restart

const READY_SCRIPT = `process.stdout.write('ready\\n');\nsetInterval(() => {}, 1 << 30);\n`;

/** Resolves with `performance.now()` at each `ready` line, in order. */
class ReadyLines {
  readonly #times: number[] = [];
  readonly #waiters: (() => void)[] = [];
  readonly stdout = {
    write: (chunk: string): boolean => {
      for (const line of chunk.split('\n')) {
        if (line.endsWith('ready')) {
          this.#times.push(performance.now());
          for (const wake of this.#waiters.splice(0)) wake();
        }
      }
      return true;
    },
  };
  readonly stderr = { write: (_chunk: string): boolean => true };

  async nth(n: number, deadlineMs = 30_000): Promise<number> {
    const deadline = performance.now() + deadlineMs;
    while (this.#times.length < n) {
      if (performance.now() > deadline) throw new Error(`no ready line #${n} within ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.#times[n - 1] as number;
  }
}

async function spawnToReady(script: string): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (chunk.includes('ready')) resolve(performance.now());
    });
    child.once('exit', (code) => reject(new Error(`ready script exited (code ${code})`)));
  });
  child.kill('SIGKILL');
  await exited;
  return ready - started;
}

async function measureRestarts(env: Environment, options: WeatherlightBenchOptions) {
  const script = path.join(env.root, 'ready.mjs');
  await writeFile(script, READY_SCRIPT);
  const spawnSamples: number[] = [];
  for (let i = 0; i < options.restarts; i += 1) spawnSamples.push(await spawnToReady(script));
  const lines = new ReadyLines();
  const backoffs: number[] = [];
  const supervisor = new Supervisor({
    services: [{ kind: 'process', name: 'bench-ready', args: [script], untilStopped: true }],
    telemetry: {
      emit: (packet) => {
        for (const event of packet.events) {
          const backoff = event.attributes['backoff_ms'];
          if (event.description === 'worker_error' && backoff !== undefined) backoffs.push(Number(backoff));
        }
      },
    },
    // Base = cap and no jitter: every restart waits exactly restartBackoffMs.
    backoff: { baseMs: options.restartBackoffMs, maxMs: options.restartBackoffMs, jitterRatio: 0 },
    restartBudget: { maxRestarts: options.restarts + 1, windowMs: 3_600_000 },
    output: lines,
  });
  const restartSamples: number[] = [];
  supervisor.start();
  try {
    await lines.nth(1);
    for (let i = 1; i <= options.restarts; i += 1) {
      const pid = supervisor.snapshot().services[0]?.pid;
      if (pid === undefined) throw new Error('the supervised child has no pid');
      const killedAt = performance.now();
      process.kill(pid, 'SIGKILL');
      restartSamples.push((await lines.nth(i + 1)) - killedAt);
    }
  } finally {
    await supervisor.shutdown();
  }
  const restartMedian = quantile(restartSamples, 0.5);
  const backoffMs = backoffs[0] ?? options.restartBackoffMs;
  const figures = {
    samples: restartSamples.length,
    configuredBackoffMs: options.restartBackoffMs,
    observedBackoffMs: [...new Set(backoffs)],
    killToReadyMs: latency(restartSamples),
    killToReadyMinusBackoffMedianMs: round(restartMedian - backoffMs),
    spawnToReadyMs: latency(spawnSamples),
    supervisorOverheadMedianMs: round(restartMedian - backoffMs - quantile(spawnSamples, 0.5)),
  };
  env.log(
    `restart: kill → ready median ${figures.killToReadyMs.p50} ms (backoff ${backoffMs} ms), bare spawn → ready ${figures.spawnToReadyMs.p50} ms`,
  );
  return figures;
}

// ---------------------------------------------------------------- the bench

/** Runs the three measurements; returns the object the script prints. */
export async function runWeatherlightBench(options: Partial<WeatherlightBenchOptions> = {}) {
  const resolved = resolveWeatherlightBenchOptions(options);
  const loadAtStart = loadavg().map((x) => round(x, 2));
  const { env, close } = await openEnvironment(resolved);
  try {
    const steps = await measureSteps(env, resolved);
    const commandRoundTrip = await measureRoundTrips(env, resolved);
    const supervisorRestart = await measureRestarts(env, resolved);
    return {
      bench: 'weatherlight',
      node: process.version,
      machine: { cpus: availableParallelism(), loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg().map((x) => round(x, 2)) },
      redis:
        resolved.redisUrl === undefined && process.env['ESPER_TEST_REDIS_URL'] === undefined
          ? 'private redis-server (no persistence)'
          : 'given',
      steps,
      commandRoundTrip,
      supervisorRestart,
    };
  } finally {
    await close();
  }
}

/** What {@link runWeatherlightBench} resolves with. */
export type WeatherlightBenchResult = Awaited<ReturnType<typeof runWeatherlightBench>>;

async function main(): Promise<void> {
  const result = await runWeatherlightBench();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

// Run only as a script: the smoke test imports the measuring functions.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
