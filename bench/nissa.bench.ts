/**
 * `npm run bench:nissa`: does Nissa keep up with a fleet? Three synthetic trainers, each its
 * own process (`nissa-producer.ts`), publish what a training run puts on the bus — per step a
 * state packet and a telemetry packet, per epoch an epoch packet, a command and its
 * acknowledgement, a field report and a CRITICAL packet — on Redis, while this process
 * consumes:
 *
 * - `bare`: a consumer group that only records each message's lag (the bus's own limit);
 * - `nissa`: Nissa's service (metrics, sampling) recording the same lag;
 *
 * in interleaved rounds at the fleet's full speed (`rate` steps/s per trainer), then one
 * `overload` round with the trainers unthrottled, where Nissa lags and samples: what it
 * dropped, by type, and that every CRITICAL packet and field report was ingested.
 * Lag = time from publish (the producer's clock; same machine) to the handler. The last
 * stdout line is one JSON object.
 *
 * Redis: `ESPER_TEST_REDIS_URL`, else a private `redis-server` on a free port.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { loadSettings } from '../src/core/index.js';
import { BusMessageType, MessagePriority, TelemetryLevel, type TelemetryPacket } from '../src/leyline/index.js';
import { NISSA_TYPES, NissaService } from '../src/nissa/index.js';
import { openBusFromSettings, type Delivery } from '../src/oona/index.js';
import { KeyRing } from '../src/security/index.js';
import { deleteKeysWithPrefix, PrivateRedisServer } from '../test/support/redis-server.js';
import { quantile } from './stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PRODUCER = path.join(REPO_ROOT, 'bench', 'nissa-producer.ts');
const SECRET = 'esper-bench-nissa-secret-0123456789abcdef';

/** Options of {@link runNissaBench}. */
export interface NissaBenchOptions {
  readonly redisUrl?: string;
  /** Trainer processes. @default 3 */
  readonly trainers: number;
  /** Steps per second per trainer in the full-speed rounds. @default 300 */
  readonly rate: number;
  /** Length of each full-speed round, in ms. @default 8000 */
  readonly roundMs: number;
  /** Interleaved rounds per consumer. @default 2 */
  readonly rounds: number;
  /** Length of the overload round (trainers unthrottled), in ms; 0 skips it. @default 5000 */
  readonly overloadMs: number;
}

export const NISSA_BENCH_DEFAULTS: NissaBenchOptions = Object.freeze({
  trainers: 3,
  rate: 300,
  roundMs: 8_000,
  rounds: 2,
  overloadMs: 5_000,
});

interface Sent {
  readonly steps: number;
  readonly state: number;
  readonly telemetry: number;
  readonly critical: number;
  readonly fieldReports: number;
  readonly commands: number;
  readonly acks: number;
  readonly shed: number;
}

/** One round's figures. */
export interface RoundFigures {
  readonly consumer: 'bare' | 'nissa';
  readonly sent: number;
  readonly handled: number;
  readonly messagesPerS: number;
  readonly lagMs: { readonly p50: number; readonly p95: number; readonly max: number };
  readonly dropped: number;
  readonly droppedByType?: Readonly<Record<string, number>>;
  readonly criticalSent: number;
  readonly criticalHandled: number;
  readonly fieldReportsSent: number;
  readonly fieldReportsHandled: number;
}

function total(sent: readonly Sent[]): number {
  return sent.reduce((n, s) => n + s.state + s.telemetry + s.critical + s.fieldReports + s.commands + s.acks, 0);
}

async function producers(redisUrl: string, prefix: string, options: NissaBenchOptions, rate: number, durationMs: number): Promise<Sent[]> {
  return Promise.all(
    Array.from(
      { length: options.trainers },
      (_, i) =>
        new Promise<Sent>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['--import', 'tsx', PRODUCER, redisUrl, prefix, `bench-run-${i + 1}`, String(rate), String(durationMs), SECRET],
            { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
          child.on('exit', (code) =>
            code === 0 ? resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Sent) : reject(new Error(`producer exited ${code}`)),
          );
        }),
    ),
  );
}

async function round(
  redisUrl: string,
  options: NissaBenchOptions,
  consumer: 'bare' | 'nissa',
  rate: number,
  durationMs: number,
): Promise<RoundFigures> {
  const prefix = `bench-nissa-${randomBytes(4).toString('hex')}.`;
  const settings = loadSettings({
    env: {},
    overrides: { oona: { busUrl: redisUrl, streamPrefix: prefix }, security: { leylineSecret: SECRET } },
  });
  const bus = openBusFromSettings(settings, { keyRing: KeyRing.fromSettings(settings.security), telemetry: { emit: () => undefined } });
  const lags: number[] = [];
  let handled = 0;
  let critical = 0;
  let fieldReports = 0;
  let first = 0;
  let last = 0;
  const record = (delivery: Delivery): void => {
    const now = Date.now();
    if (first === 0) first = now;
    last = now;
    lags.push(now - delivery.publishedAtMs);
    handled += 1;
    if (delivery.type === BusMessageType.FIELD_REPORT) fieldReports += 1;
    if (delivery.type === BusMessageType.TELEMETRY && delivery.priority === MessagePriority.CRITICAL) {
      if ((delivery.message as TelemetryPacket).level === TelemetryLevel.CRITICAL) critical += 1;
    }
  };
  let nissa: NissaService | undefined;
  let closeConsumer: () => Promise<void>;
  if (consumer === 'nissa') {
    const service = new NissaService({ bus });
    service.addListener(record);
    await service.start();
    nissa = service;
    closeConsumer = () => service.close();
  } else {
    const subscription = bus.subscribe({ group: 'bench-bare', consumer: 'bench', types: NISSA_TYPES, handler: record });
    await subscription.ready;
    closeConsumer = () => subscription.close();
  }
  try {
    const sent = await producers(redisUrl, prefix, options, rate, durationMs);
    const expected = total(sent);
    const deadline = Date.now() + 120_000;
    while (handled + (nissa?.stats().dropped ?? 0) < expected && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const stats = nissa?.stats();
    const sorted = [...lags].sort((a, b) => a - b);
    return {
      consumer,
      sent: expected,
      handled,
      messagesPerS: last > first ? (handled / (last - first)) * 1000 : 0,
      lagMs: { p50: quantile(sorted, 0.5), p95: quantile(sorted, 0.95), max: sorted.at(-1) ?? 0 },
      dropped: stats?.dropped ?? 0,
      ...(nissa === undefined ? {} : { droppedByType: droppedByType(sent, stats?.byType ?? {}) }),
      criticalSent: sent.reduce((n, s) => n + s.critical, 0),
      criticalHandled: critical,
      fieldReportsSent: sent.reduce((n, s) => n + s.fieldReports, 0),
      fieldReportsHandled: fieldReports,
    };
  } finally {
    await closeConsumer();
    await bus.close();
    const redis = new Redis(redisUrl);
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  }
}

/** What Nissa sampled out, per type: sent minus ingested. */
function droppedByType(sent: readonly Sent[], byType: Readonly<Record<string, number>>): Record<string, number> {
  const state = sent.reduce((n, s) => n + s.state, 0);
  const telemetry = sent.reduce((n, s) => n + s.telemetry + s.critical, 0);
  return { system_state: state - (byType['system_state'] ?? 0), telemetry: telemetry - (byType['telemetry'] ?? 0) };
}

/** Runs the bench; returns its JSON object. */
export async function runNissaBench(overrides: Partial<NissaBenchOptions> = {}): Promise<Record<string, unknown>> {
  const options = { ...NISSA_BENCH_DEFAULTS, ...overrides };
  let server: PrivateRedisServer | undefined;
  let redisUrl = options.redisUrl ?? process.env['ESPER_TEST_REDIS_URL'];
  if (redisUrl === undefined || redisUrl === '') {
    server = await PrivateRedisServer.start({ persistent: false });
    redisUrl = server.url;
  }
  const loadAtStart = loadavg();
  try {
    const rounds: RoundFigures[] = [];
    for (let i = 0; i < options.rounds; i += 1) {
      for (const consumer of ['bare', 'nissa'] as const)
        rounds.push(await round(redisUrl, options, consumer, options.rate, options.roundMs));
    }
    const overload = options.overloadMs > 0 ? await round(redisUrl, options, 'nissa', 0, options.overloadMs) : undefined;
    const of = (consumer: 'bare' | 'nissa', pick: (r: RoundFigures) => number): number => {
      const values = rounds
        .filter((r) => r.consumer === consumer)
        .map(pick)
        .sort((a, b) => a - b);
      return quantile(values, 0.5);
    };
    return {
      bench: 'nissa',
      node: process.version,
      machine: { loadAvgAtStart: loadAtStart, loadAvgAtEnd: loadavg() },
      redis: server === undefined ? 'configured' : 'private redis-server (no persistence)',
      protocol: {
        trainers: options.trainers,
        stepsPerSPerTrainer: options.rate,
        roundMs: options.roundMs,
        rounds: options.rounds,
        interleaved: true,
      },
      fleet: {
        bareLagP95Ms: of('bare', (r) => r.lagMs.p95),
        nissaLagP95Ms: of('nissa', (r) => r.lagMs.p95),
        nissaLagP50Ms: of('nissa', (r) => r.lagMs.p50),
        lagP95Ratio: of('bare', (r) => r.lagMs.p95) > 0 ? of('nissa', (r) => r.lagMs.p95) / of('bare', (r) => r.lagMs.p95) : 0,
        nissaMessagesPerS: of('nissa', (r) => r.messagesPerS),
        keptUp: rounds.filter((r) => r.consumer === 'nissa').every((r) => r.dropped === 0 && r.handled === r.sent),
      },
      rounds,
      ...(overload === undefined ? {} : { overload }),
    };
  } finally {
    await server?.dispose();
  }
}

async function main(): Promise<void> {
  const result = await runNissaBench();
  const fleet = result['fleet'] as Record<string, number | boolean>;
  process.stderr.write(
    `fleet of 3 at full speed: Nissa lag p95 ${String(fleet['nissaLagP95Ms'])} ms (bare bus ${String(fleet['bareLagP95Ms'])} ms), kept up: ${String(fleet['keptUp'])}\n`,
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
