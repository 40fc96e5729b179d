/**
 * Oona benchmark: publish → handle → ack throughput and publish-to-handle latency of ~1 KB
 * signed envelopes (a TelemetryPacket of ~1 KB, protobuf + HMAC-SHA256 on) on StreamBus over
 * RedisStreamStore (`ESPER_TEST_REDIS_URL` or 127.0.0.1:6379, unique prefix, deleted after) and over
 * MemoryStreamStore; two baselines from the same run: raw pipelined XADD throughput from
 * `redis-benchmark`, and a plain ioredis XADD/XREADGROUP/XACK loop of the same entry size,
 * publish window and consumers without encoding or signing (what one Node thread can move
 * through Redis: the bus's limit), with the ratios bus/raw and bus/plain; latency at a paced
 * 1,000 msgs/s. Publisher and consumers share this one process (and its one JS thread), as
 * in the embedded deployment; one more figure puts the consumers in child processes.
 *
 * Prints progress to stderr and one JSON object as the last line of stdout.
 *
 *   npm run bench:oona
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { toBinary } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { buildTelemetryPacket, MemoryTelemetrySink } from '../src/core/index.js';
import { BusMessageType, TelemetryPacketSchema, type TelemetryPacket } from '../src/leyline/index.js';
import { HmacSigner, KeyRing } from '../src/security/index.js';
import type { Delivery } from '../src/oona/bus.js';
import { buildEnvelope, encodeBusMessage, openEntry, sealEnvelope } from '../src/oona/envelope.js';
import { MemoryStreamStore } from '../src/oona/memory-stream-store.js';
import { RedisStreamStore } from '../src/oona/redis-stream-store.js';
import type { StreamStore } from '../src/oona/stream-store.js';
import { StreamBus } from '../src/oona/stream-bus.js';
import { quantile } from './stats.js';

const REDIS_URL = process.env['ESPER_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const REDIS_HOST = new URL(REDIS_URL).hostname;
const REDIS_PORT = new URL(REDIS_URL).port || '6379';

/** Messages per throughput run, after a warm-up of WARMUP_MESSAGES. */
const THROUGHPUT_MESSAGES = 20_000;
const WARMUP_MESSAGES = 2_000;
/** Publishes in flight at once during the throughput run. */
const PUBLISH_WINDOW = 256;
/** Consumers of the one group during the throughput run. */
const CONSUMERS = 4;
const READ_COUNT = 128;
/** Paced run: rate and duration. */
const PACED_RATE_PER_S = 1_000;
const PACED_DURATION_MS = 5_000;
/** redis-benchmark: requests, pipeline depth, value size. */
const RAW_REQUESTS = 100_000;
const RAW_PIPELINE = 16;
const RAW_VALUE_BYTES = 1_024;
/** Aims of issue 3 (ratio to raw XADD, paced p99) and issue 16 (ratio to the plain loop). */
const AIM_RATIO = 0.3;
const AIM_PACED_P99_MS = 5;
const AIM_PLAIN_RATIO = 0.5;
const AIM_THROUGHPUT_MSGS_PER_S = 25_000;
/** Consumer processes (and consumers in each) of the multi-process throughput run. */
const CONSUMER_PROCESSES = 2;
const CONSUMERS_PER_PROCESS = 2;
/** Set in a consumer process of that run: the stream prefix to consume. */
const CONSUMER_ROLE_ENV = 'ESPER_BENCH_OONA_CONSUMER_PREFIX';
/** Interleaved rounds of (plain loop, bus on Redis) throughput; figures pool the rounds. */
const PLAIN_ROUNDS = 2;

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

interface LatencyFigures {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

function summarize(latenciesMs: number[]): LatencyFigures {
  return {
    p50Ms: round(quantile(latenciesMs, 0.5), 3),
    p99Ms: round(quantile(latenciesMs, 0.99), 3),
    maxMs: round(
      latenciesMs.reduce((max, x) => Math.max(max, x), 0),
      3,
    ),
  };
}

/** A telemetry packet of about 1 KB encoded; its packet id carries the sequence number. */
function packet(sequence: number): TelemetryPacket {
  return buildTelemetryPacket({
    source: 'bench',
    trainingRunId: 'run-bench',
    packetId: `bench-${sequence}`,
    metrics: Array.from({ length: 12 }, (_, i) => ({
      name: `tolaria.training.metric_${i.toString().padStart(2, '0')}`,
      value: sequence + i / 7,
      unit: 'ms',
      attributes: { seed: `seed-${i % 4}`, site: `block${i}.post` },
    })),
  });
}

/** Sequence number of a delivered bench packet. */
const sequenceOf = (delivery: Delivery): number => Number((delivery.message as TelemetryPacket).packetId.slice('bench-'.length));

interface Target {
  readonly name: 'redis' | 'memory';
  makeStore(): StreamStore;
}

const benchKeyRing = (): KeyRing => new KeyRing([{ keyId: 'bench', secret: Buffer.from('esper-bench-secret-0123456789') }]);

/**
 * CPU cost of one message in this process, without any store: encode + envelope + sign on
 * the publish side, verify + decode on the consume side (µs, median of batches, after a
 * warm-up). It bounds what one Node thread can move, whatever the store.
 */
function codecCost(): { sealUs: number; openUs: number } {
  const signer = new HmacSigner(benchKeyRing());
  const message = packet(7);
  const seal = () => {
    const { type, payload } = encodeBusMessage(message);
    const envelope = buildEnvelope({
      type,
      payload,
      priority: message.priority,
      correlationId: '',
      trainingRunId: 'run-bench',
      publishedAtMs: Date.now(),
      attempt: 1,
      messageId: randomUUID(),
    });
    return sealEnvelope(signer, 'bench', envelope);
  };
  const fields = seal();
  const open = () => {
    if (!openEntry(signer, fields).ok) throw new Error('bench entry failed verification');
  };
  // Both warmed up well past the JIT's tiers first: a few hundred calls still measured
  // seal (run first) partly unoptimised.
  for (let i = 0; i < 5_000; i += 1) {
    seal();
    open();
  }
  const medianUs = (op: () => unknown): number => {
    const perBatch = 500;
    for (let i = 0; i < perBatch; i += 1) op();
    const samples: number[] = [];
    for (let b = 0; b < 21; b += 1) {
      const start = performance.now();
      for (let i = 0; i < perBatch; i += 1) op();
      samples.push(((performance.now() - start) * 1_000) / perBatch);
    }
    return round(quantile(samples, 0.5), 1);
  };
  return { sealUs: medianUs(seal), openUs: medianUs(open) };
}

function makeBus(store: StreamStore, streamPrefix: string): StreamBus {
  return new StreamBus({
    store,
    streamPrefix,
    keyRing: benchKeyRing(),
    telemetry: new MemoryTelemetrySink(),
    readCount: READ_COUNT,
    blockMs: 100,
    // The throughput run measures the bus, not back-pressure: nothing may be shed.
    maxBacklog: 10_000_000,
  });
}

/** Resolves when `predicate` holds, polling every few ms; throws after `deadlineMs`. */
async function until(predicate: () => boolean, what: string, deadlineMs = 120_000): Promise<void> {
  const start = performance.now();
  while (!predicate()) {
    if (performance.now() - start > deadlineMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface RunResult {
  readonly messages: number;
  readonly seconds: number;
  readonly throughputMsgsPerS: number;
  /** Publish call → handler, per message (under saturation in the throughput run). */
  readonly latency: LatencyFigures;
  readonly shed: number;
}

/**
 * One bus, `consumers` consumers in one group; publishes `total` packets (the first
 * `warmup` not measured) with at most `window` in flight, or at `ratePerS` when given.
 * Throughput is measured until the last message is handled and acknowledged.
 */
async function run(
  target: Target,
  options: { total: number; warmup: number; consumers: number; window?: number; ratePerS?: number },
): Promise<RunResult> {
  const store = target.makeStore();
  const prefix = `esper-bench:${randomUUID()}:`;
  const bus = makeBus(store, prefix);
  const sentAt = new Float64Array(options.total);
  const latencies: number[] = [];
  let handled = 0;
  try {
    const subscriptions = Array.from({ length: options.consumers }, (_, i) =>
      bus.subscribe({
        group: 'bench',
        consumer: `c${i}`,
        types: [BusMessageType.TELEMETRY],
        handler: (delivery) => {
          const sequence = sequenceOf(delivery);
          if (sequence >= options.warmup) latencies.push(performance.now() - (sentAt[sequence] as number));
          handled += 1;
        },
      }),
    );
    await Promise.all(subscriptions.map((s) => s.ready));
    const packets = Array.from({ length: options.total }, (_, i) => packet(i));
    let shed = 0;
    const publishOne = async (i: number): Promise<void> => {
      sentAt[i] = performance.now();
      const receipt = await bus.publish(packets[i] as TelemetryPacket);
      if (receipt.status === 'shed') shed += 1;
    };

    // Warm-up: JIT, connections, groups.
    for (let i = 0; i < options.warmup; i += 1) await publishOne(i);
    await until(() => bus.metrics().handledTotal >= options.warmup, 'warm-up');

    const started = performance.now();
    if (options.ratePerS === undefined) {
      let next = options.warmup;
      const window = options.window ?? 1;
      const worker = async (): Promise<void> => {
        while (next < options.total) await publishOne(next++);
      };
      await Promise.all(Array.from({ length: window }, worker));
    } else {
      const intervalMs = 1_000 / options.ratePerS;
      let next = options.warmup;
      const inFlight: Promise<void>[] = [];
      while (next < options.total) {
        const due = options.warmup + Math.floor((performance.now() - started) / intervalMs) + 1;
        while (next < Math.min(due, options.total)) inFlight.push(publishOne(next++));
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await Promise.all(inFlight);
    }
    await until(() => bus.metrics().handledTotal >= options.total, 'every message to be handled and acknowledged');
    const seconds = (performance.now() - started) / 1_000;
    const measured = options.total - options.warmup;
    return {
      messages: measured,
      seconds: round(seconds, 3),
      throughputMsgsPerS: Math.round(measured / seconds),
      latency: summarize(latencies),
      shed,
    };
  } finally {
    await bus.close();
    await store.close();
    if (target.name === 'redis') await deleteKeys(prefix);
    if (handled < options.total) process.stderr.write(`  (handled ${handled}/${options.total})\n`);
  }
}

/**
 * Several runs as one: messages and seconds summed (throughput over the pooled time),
 * latencies of the round with the median p50 (approximately pooled), shed summed.
 */
function pooled(results: readonly RunResult[]): RunResult {
  const messages = results.reduce((sum, r) => sum + r.messages, 0);
  const seconds = results.reduce((sum, r) => sum + r.seconds, 0);
  const byP50 = [...results].sort((a, b) => a.latency.p50Ms - b.latency.p50Ms);
  return {
    messages,
    seconds: round(seconds, 3),
    throughputMsgsPerS: Math.round(messages / seconds),
    latency: (byP50[Math.floor((byP50.length - 1) / 2)] as RunResult).latency,
    shed: results.reduce((sum, r) => sum + r.shed, 0),
  };
}

async function deleteKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1_000);
      cursor = nextCursor;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

/**
 * The plain baseline: the bus's traffic shape through ioredis alone — `window` publishers
 * each awaiting one XADD of an entry as large as the bus's (the encoded packet as `e`, 32
 * bytes as `s`, the key id as `k`; prepared once: no encoding, no signing), `consumers`
 * loops each on its own connection doing XREADGROUP COUNT `READ_COUNT` BLOCK 100, a
 * "handler" that reads the sequence number, then one XACK per batch before the next read.
 * Measured like the bus: until the last entry is acknowledged.
 */
async function plainLoop(options: { total: number; warmup: number; consumers: number; window: number }): Promise<RunResult> {
  const prefix = `esper-bench:${randomUUID()}:`;
  const stream = `${prefix}plain`;
  const group = 'bench';
  const main = new Redis(REDIS_URL);
  const readers = Array.from({ length: options.consumers }, () => new Redis(REDIS_URL));
  const entries = Array.from({ length: options.total }, (_, i) => [
    'e',
    Buffer.from(toBinary(TelemetryPacketSchema, packet(i))),
    's',
    Buffer.alloc(32, 7),
    'k',
    'bench',
    'n',
    String(i),
  ]);
  const sentAt = new Float64Array(options.total);
  const latencies: number[] = [];
  let acked = 0;
  let stop = false;
  try {
    await main.xgroup('CREATE', stream, group, '$', 'MKSTREAM');
    const consume = async (reader: Redis, consumer: string): Promise<void> => {
      while (!stop) {
        // callBuffer, as RedisStreamStore reads: binary values, no string decoding.
        const reply = (await reader.callBuffer('XREADGROUP', [
          'GROUP',
          group,
          consumer,
          'COUNT',
          READ_COUNT,
          'BLOCK',
          100,
          'STREAMS',
          stream,
          '>',
        ])) as [Buffer, [Buffer, Buffer[]][]][] | null;
        if (reply === null) continue;
        const ids: Buffer[] = [];
        for (const [, items] of reply) {
          for (const [id, fields] of items) {
            const sequence = Number((fields[7] as Buffer).toString());
            if (sequence >= options.warmup) latencies.push(performance.now() - (sentAt[sequence] as number));
            ids.push(id);
          }
        }
        if (ids.length === 0) continue;
        // Not `acked += await …`: that reads `acked` before the wait and loses other loops' counts.
        const count = await main.xack(stream, group, ...ids);
        acked += count;
      }
    };
    // A read cut short by the cleanup below (stream deleted, connection dropped) is expected.
    const consumers = readers.map((reader, i) =>
      consume(reader, `c${i}`).catch((error: unknown) => {
        if (!stop) throw error;
      }),
    );
    const publishOne = async (i: number): Promise<void> => {
      sentAt[i] = performance.now();
      await main.xadd(stream, '*', ...(entries[i] as (string | Buffer)[]));
    };
    for (let i = 0; i < options.warmup; i += 1) await publishOne(i);
    await until(() => acked >= options.warmup, 'plain warm-up');
    const started = performance.now();
    let next = options.warmup;
    const worker = async (): Promise<void> => {
      while (next < options.total) await publishOne(next++);
    };
    await Promise.all(Array.from({ length: options.window }, worker));
    await until(() => acked >= options.total, 'every plain entry to be acknowledged');
    const seconds = (performance.now() - started) / 1_000;
    stop = true;
    await Promise.all(consumers);
    const measured = options.total - options.warmup;
    return {
      messages: measured,
      seconds: round(seconds, 3),
      throughputMsgsPerS: Math.round(measured / seconds),
      latency: summarize(latencies),
      shed: 0,
    };
  } finally {
    stop = true;
    for (const reader of readers) reader.disconnect();
    await main.del(stream);
    await main.quit();
  }
}

/**
 * A consumer process of the multi-process run: `CONSUMERS_PER_PROCESS` consumers of group
 * `bench` on its own StreamBus over Redis; prints `ready` once subscribed and stops when its
 * stdin closes.
 */
async function consumerProcess(prefix: string): Promise<void> {
  const store = new RedisStreamStore({ url: REDIS_URL });
  const bus = makeBus(store, prefix);
  const subscriptions = Array.from({ length: CONSUMERS_PER_PROCESS }, (_, i) =>
    bus.subscribe({ group: 'bench', consumer: `p${process.pid}-c${i}`, types: [BusMessageType.TELEMETRY], handler: () => undefined }),
  );
  await Promise.all(subscriptions.map((s) => s.ready));
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    process.stdin.on('end', resolve).resume();
  });
  await bus.close();
  await store.close();
}

interface ProcessesResult {
  readonly processes: number;
  readonly consumersPerProcess: number;
  readonly messages: number;
  readonly seconds: number;
  readonly throughputMsgsPerS: number;
}

/**
 * Publish → handle → ack with the consumers in `CONSUMER_PROCESSES` child processes and the
 * publisher (window `window`) in this one; done when the group has nothing undelivered or
 * unacknowledged (XINFO GROUPS lag and XPENDING), polled every few ms.
 */
async function processesRun(options: { total: number; warmup: number; window: number }): Promise<ProcessesResult> {
  const prefix = `esper-bench:${randomUUID()}:`;
  const children: ChildProcess[] = [];
  const store = new RedisStreamStore({ url: REDIS_URL });
  const bus = makeBus(store, prefix);
  const stream = bus.options.streams.telemetry;
  const drained = async (count: number): Promise<void> => {
    const start = performance.now();
    for (;;) {
      const group = (await store.groups(stream)).find((g) => g.name === 'bench');
      if (group !== undefined && group.lag === 0 && group.pending === 0 && (await store.length(stream)) >= count) return;
      if (performance.now() - start > 120_000) throw new Error('timed out waiting for the consumer processes');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  try {
    for (let i = 0; i < CONSUMER_PROCESSES; i += 1) {
      const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
        env: { ...process.env, [CONSUMER_ROLE_ENV]: prefix },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      await new Promise<void>((resolve, reject) => {
        lines.once('line', () => resolve());
        child.once('exit', (code) => reject(new Error(`consumer process exited with ${code} before it was ready`)));
      });
    }
    const packets = Array.from({ length: options.total }, (_, i) => packet(i));
    for (let i = 0; i < options.warmup; i += 1) await bus.publish(packets[i] as TelemetryPacket);
    await drained(options.warmup);
    const started = performance.now();
    let next = options.warmup;
    const worker = async (): Promise<void> => {
      while (next < options.total) await bus.publish(packets[next++] as TelemetryPacket);
    };
    await Promise.all(Array.from({ length: options.window }, worker));
    await drained(options.total);
    const seconds = (performance.now() - started) / 1_000;
    const measured = options.total - options.warmup;
    return {
      processes: CONSUMER_PROCESSES,
      consumersPerProcess: CONSUMERS_PER_PROCESS,
      messages: measured,
      seconds: round(seconds, 3),
      throughputMsgsPerS: Math.round(measured / seconds),
    };
  } finally {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.stdin?.end();
          }),
      ),
    );
    await bus.close();
    await store.close();
    await deleteKeys(prefix);
  }
}

/** Raw XADD throughput of a 1 KB field value from `redis-benchmark` (CSV output). */
async function rawXadd(): Promise<{ requestsPerS: number; p50Ms: number; p99Ms: number; command: string }> {
  const key = `esper-bench:${randomUUID()}:raw`;
  const value = 'x'.repeat(RAW_VALUE_BYTES);
  const args = [
    '-h',
    REDIS_HOST,
    '-p',
    String(REDIS_PORT),
    '-n',
    String(RAW_REQUESTS),
    '-P',
    String(RAW_PIPELINE),
    '-q',
    '--csv',
    'XADD',
    key,
    '*',
    'payload',
    value,
  ];
  try {
    const { stdout } = await promisify(execFile)('redis-benchmark', args, { maxBuffer: 16 * 1024 * 1024 });
    const lines = stdout.trim().split('\n');
    const header = (lines[0] ?? '').split(',').map((c) => c.replaceAll('"', ''));
    const row = (lines.at(-1) ?? '').match(/"([^"]*)"/g)?.map((c) => c.replaceAll('"', '')) ?? [];
    const column = (name: string): number => Number(row[header.indexOf(name)]);
    const requestsPerS = column('rps');
    if (!Number.isFinite(requestsPerS) || requestsPerS <= 0) throw new Error(`cannot parse redis-benchmark output: ${stdout}`);
    return {
      requestsPerS: Math.round(requestsPerS),
      p50Ms: column('p50_latency_ms'),
      p99Ms: column('p99_latency_ms'),
      command: `redis-benchmark -h ${REDIS_HOST} -p ${REDIS_PORT} -n ${RAW_REQUESTS} -P ${RAW_PIPELINE} -q --csv XADD <key> '*' payload <${RAW_VALUE_BYTES} bytes>`,
    };
  } finally {
    const redis = new Redis(REDIS_URL);
    await redis.del(key);
    await redis.quit();
  }
}

async function main(): Promise<void> {
  const loadAtStart = round(loadavg()[0] ?? 0);
  const sample = packet(1);
  const payloadBytes = toBinary(TelemetryPacketSchema, sample).length;
  process.stderr.write(`message: TelemetryPacket, ${payloadBytes} bytes encoded\n`);
  const targets: Target[] = [
    { name: 'redis', makeStore: () => new RedisStreamStore({ url: REDIS_URL }) },
    { name: 'memory', makeStore: () => new MemoryStreamStore() },
  ];

  const codec = codecCost();
  process.stderr.write(`codec: seal ${codec.sealUs} µs, open ${codec.openUs} µs per message\n`);
  process.stderr.write('raw XADD (redis-benchmark)…\n');
  const raw = await rawXadd();
  process.stderr.write(`  ${raw.requestsPerS} XADD/s\n`);

  const throughput: Record<string, RunResult> = {};
  const paced: Record<string, RunResult> = {};
  const shape = { total: WARMUP_MESSAGES + THROUGHPUT_MESSAGES, warmup: WARMUP_MESSAGES, consumers: CONSUMERS, window: PUBLISH_WINDOW };
  // The bus on Redis and the plain loop, interleaved, so load on the machine hits both alike.
  const rounds: { plain: RunResult; bus: RunResult }[] = [];
  for (let round = 0; round < PLAIN_ROUNDS; round += 1) {
    process.stderr.write(
      `plain ioredis loop, round ${round + 1} (${THROUGHPUT_MESSAGES} msgs, window ${PUBLISH_WINDOW}, ${CONSUMERS} consumers)…\n`,
    );
    const plain = await plainLoop(shape);
    process.stderr.write(`  ${JSON.stringify(plain)}\n`);
    process.stderr.write(`redis: throughput, round ${round + 1}…\n`);
    const bus = await run(targets[0] as Target, shape);
    process.stderr.write(`  ${JSON.stringify(bus)}\n`);
    rounds.push({ plain, bus });
  }
  throughput['redis'] = pooled(rounds.map((r) => r.bus));
  const plainThroughput = pooled(rounds.map((r) => r.plain));
  process.stderr.write(
    `redis: throughput with ${CONSUMER_PROCESSES} consumer processes × ${CONSUMERS_PER_PROCESS} consumers (publisher here, window ${PUBLISH_WINDOW})…\n`,
  );
  const processes = await processesRun({ total: shape.total, warmup: shape.warmup, window: PUBLISH_WINDOW });
  process.stderr.write(`  ${JSON.stringify(processes)}\n`);
  for (const target of targets) {
    if (target.name !== 'redis') {
      process.stderr.write(`${target.name}: throughput (${THROUGHPUT_MESSAGES} msgs, window ${PUBLISH_WINDOW}, ${CONSUMERS} consumers)…\n`);
      throughput[target.name] = await run(target, shape);
      process.stderr.write(`  ${JSON.stringify(throughput[target.name])}\n`);
    }
    process.stderr.write(`${target.name}: paced ${PACED_RATE_PER_S} msgs/s for ${PACED_DURATION_MS} ms…\n`);
    const pacedMessages = (PACED_RATE_PER_S * PACED_DURATION_MS) / 1_000;
    paced[target.name] = await run(target, {
      total: 500 + pacedMessages,
      warmup: 500,
      consumers: 1,
      ratePerS: PACED_RATE_PER_S,
    });
    process.stderr.write(`  ${JSON.stringify(paced[target.name])}\n`);
  }

  const redisThroughput = throughput['redis'] as RunResult;
  const redisPaced = paced['redis'] as RunResult;
  const ratio = round(redisThroughput.throughputMsgsPerS / raw.requestsPerS, 3);
  const plainRatio = round(redisThroughput.throughputMsgsPerS / plainThroughput.throughputMsgsPerS, 3);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'oona',
      node: process.version,
      cpus: cpus().length,
      load_average_1m_at_start: loadAtStart,
      message: { type: 'TelemetryPacket', payloadBytes, signed: 'HMAC-SHA256', encoding: 'protobuf' },
      codec_cpu_per_message: codec,
      setup: {
        publishWindow: PUBLISH_WINDOW,
        consumers: CONSUMERS,
        readCount: READ_COUNT,
        sameProcess: true,
      },
      throughput: {
        redis: redisThroughput,
        memory: throughput['memory'],
      },
      raw_xadd: raw,
      ratio_redis_bus_to_raw_xadd: ratio,
      plain_ioredis_loop: { ...plainThroughput, rounds: rounds.map((r) => r.plain.throughputMsgsPerS) },
      bus_rounds: rounds.map((r) => r.bus.throughputMsgsPerS),
      ratio_redis_bus_to_plain_ioredis: plainRatio,
      throughput_consumer_processes: processes,
      paced_1000_per_s: {
        redis: redisPaced,
        memory: paced['memory'],
      },
      aims: {
        ratio_min: AIM_RATIO,
        ratio_met: ratio >= AIM_RATIO,
        paced_p99_max_ms: AIM_PACED_P99_MS,
        paced_p99_met: redisPaced.latency.p99Ms < AIM_PACED_P99_MS,
        plain_ratio_min: AIM_PLAIN_RATIO,
        plain_ratio_met: plainRatio >= AIM_PLAIN_RATIO,
        throughput_min_msgs_per_s: AIM_THROUGHPUT_MSGS_PER_S,
        throughput_met: redisThroughput.throughputMsgsPerS >= AIM_THROUGHPUT_MSGS_PER_S,
      },
    })}\n`,
  );
}

const consumerPrefix = process.env[CONSUMER_ROLE_ENV];
if (consumerPrefix === undefined) await main();
else await consumerProcess(consumerPrefix);
