/**
 * What the distributed tests share: the environment of an `esper up` on a private key
 * prefix of a test Redis, a reader of what crossed the bus for a run, and the Tamiyo
 * server's field-report log of a run.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { loadSettings } from '../../../src/core/index.js';
import {
  BusMessageType,
  CommandAckStatus,
  type AdaptationCommand,
  type CommandAck,
  type FieldReport,
  type TelemetryPacket,
} from '../../../src/leyline/index.js';
import { openBusFromSettings, type Bus, type Delivery } from '../../../src/oona/index.js';
import { KeyRing } from '../../../src/security/index.js';
import { FieldReportStore } from '../../../src/tamiyo/index.js';
import { deleteKeysWithPrefix } from '../../support/redis-server.js';

/** One distributed system under test: its Redis, key prefix, signing secret and var dir. */
export interface SystemUnderTest {
  readonly redisUrl: string;
  readonly prefix: string;
  readonly secret: string;
  readonly varDir: string;
  /** The environment of `esper up` / `esper serve` (children inherit it). */
  readonly env: Readonly<Record<string, string>>;
}

/** A fresh system: unique prefix, fresh secret, the supervisor's timings shortened. */
export function systemUnderTest(redisUrl: string, varDir: string, extra: Readonly<Record<string, string>> = {}): SystemUnderTest {
  const prefix = `wl-${randomBytes(4).toString('hex')}.`;
  const secret = randomBytes(32).toString('hex');
  return {
    redisUrl,
    prefix,
    secret,
    varDir,
    env: {
      ESPER_STORAGE_VAR_DIR: varDir,
      ESPER_OONA_BUS_URL: redisUrl,
      ESPER_OONA_STREAM_PREFIX: prefix,
      ESPER_LEYLINE_SECRET: secret,
      ESPER_WEATHERLIGHT_BACKOFF_BASE_MS: '500',
      ESPER_WEATHERLIGHT_TELEMETRY_INTERVAL_MS: '200',
      ESPER_WEATHERLIGHT_DRAIN_DEADLINE_MS: '20000',
      ...extra,
    },
  };
}

/** A bus of the system, for the test to read what crossed it. */
export function openTestBus(system: SystemUnderTest): Bus {
  const settings = loadSettings({ env: {}, overrides: { oona: { busUrl: system.redisUrl, streamPrefix: system.prefix } } });
  return openBusFromSettings(settings, {
    keyRing: KeyRing.fromSettings({ ...settings.security, leylineSecret: system.secret }),
    telemetry: { emit: () => undefined },
  });
}

/** Deletes every key of the system's prefix. */
export async function cleanUp(system: SystemUnderTest): Promise<void> {
  const redis = new Redis(system.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    await deleteKeysWithPrefix(redis, system.prefix);
  } catch {
    // The server may be gone already (a test that killed it disposes of it itself).
  } finally {
    redis.disconnect();
  }
}

/** Writes a run config file and returns its path. */
export async function writeConfig(dir: string, name: string, config: Record<string, unknown>): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(config));
  return file;
}

/** Everything of these types still on the bus, read by a fresh consumer group from the start. */
export async function readAll(bus: Bus, types: readonly BusMessageType[], quietMs = 1_500): Promise<Delivery[]> {
  const seen: Delivery[] = [];
  let last = Date.now();
  const subscription = bus.subscribe({
    group: `test-reader-${randomBytes(4).toString('hex')}`,
    consumer: 'test',
    types,
    from: 'all',
    handler: (delivery) => {
      seen.push(delivery);
      last = Date.now();
    },
  });
  await subscription.ready;
  // Read until nothing new arrived for `quietMs` (the streams are finite: the run is over).
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (Date.now() - last >= quietMs) break;
  }
  await subscription.close();
  return seen;
}

/** A run's commands, acknowledgements and field reports as they crossed the bus. */
export interface RunTraffic {
  readonly commands: readonly AdaptationCommand[];
  readonly acks: readonly CommandAck[];
  readonly fieldReports: readonly FieldReport[];
}

/** What crossed the bus for `runId`. */
export async function runTraffic(bus: Bus, runId: string): Promise<RunTraffic> {
  const all = await readAll(bus, [BusMessageType.ADAPTATION_COMMAND, BusMessageType.COMMAND_ACK, BusMessageType.FIELD_REPORT]);
  const ofRun = all.filter((d) => d.trainingRunId === runId);
  return {
    commands: ofRun.filter((d) => d.type === BusMessageType.ADAPTATION_COMMAND).map((d) => d.message as AdaptationCommand),
    acks: ofRun.filter((d) => d.type === BusMessageType.COMMAND_ACK).map((d) => d.message as CommandAck),
    fieldReports: ofRun.filter((d) => d.type === BusMessageType.FIELD_REPORT).map((d) => d.message as FieldReport),
  };
}

/** Each command's fate: one acknowledgement per command, APPLIED or with a reason. */
export function fates(traffic: RunTraffic): Map<string, CommandAck> {
  const byCommand = new Map<string, CommandAck>();
  for (const ack of traffic.acks) byCommand.set(ack.commandId, ack);
  return byCommand;
}

/** Whether an acknowledgement says what happened: applied, or another status with its reason. */
export function accountedFor(ack: CommandAck): boolean {
  return ack.status === CommandAckStatus.APPLIED || (ack.status !== CommandAckStatus.UNSPECIFIED && ack.reason !== '');
}

/** The Tamiyo server's field-report log of a run. */
export async function tamiyoFieldReports(varDir: string, runId: string): Promise<FieldReport[]> {
  const store = await FieldReportStore.open(path.join(varDir, 'tamiyo', 'field-reports', `${runId}.wal`));
  try {
    return store.reports();
  } finally {
    await store.close();
  }
}

/** Telemetry packets of `source` seen on the bus while `work` runs. */
export async function watchTelemetry<T>(
  bus: Bus,
  source: string,
  work: (packets: readonly TelemetryPacket[]) => Promise<T>,
): Promise<{ result: T; packets: TelemetryPacket[] }> {
  const packets: TelemetryPacket[] = [];
  const subscription = bus.subscribe({
    group: `test-telemetry-${randomBytes(4).toString('hex')}`,
    consumer: 'test',
    types: [BusMessageType.TELEMETRY],
    handler: (delivery) => {
      const packet = delivery.message as TelemetryPacket;
      if (packet.sourceSubsystem === source) packets.push(packet);
    },
  });
  await subscription.ready;
  try {
    const result = await work(packets);
    return { result, packets };
  } finally {
    await subscription.close();
  }
}
