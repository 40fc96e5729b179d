/**
 * Tamiyo learns its commands' fates over the bus: Kasmina's command inbox acknowledges each
 * command the trainer reports on (`CommandAck`), and the control responder turns the
 * acknowledgements of Tamiyo's own commands into `commandOutcome` calls — a command a real
 * Kasmina rejects arrives rejected with its reason (and its field report says so), an
 * applied one counts applied, a redelivered acknowledgement counts once, a command still
 * queued at the end of the run counts RUN_ENDED, and acknowledgements of other runs and of
 * operator commands are left alone. In-memory bus, and one round trip over real Redis.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DependencyGuard, ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { buildOperatorCommand, CommandInbox, OperatorAction } from '../../src/kasmina/index.js';
import {
  BusMessageType,
  CommandAckSchema,
  CommandAckStatus,
  FieldReportOutcome,
  SystemStatePacketSchema,
  TrainingMetricsSchema,
  type AdaptationCommand,
  type CommandAck,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, RedisStreamStore, StreamBus, type StreamStore } from '../../src/oona/index.js';
import { HmacSigner } from '../../src/security/index.js';
import {
  CommandBuilder,
  ControlResponder,
  DecisionKind,
  FieldReportBuilder,
  FieldReportStore,
  formatCommandOutcomes,
  RiskEngine,
  TamiyoService,
  toId,
  type PolicyContext,
  type PolicyProposal,
  type TamiyoCommandOutcomes,
  type TamiyoPolicy,
} from '../../src/tamiyo/index.js';
import { initTensorBackend, seededRng } from '../../src/tensor/index.js';
import { CommandOutcomeStatus, mlpHost, type CommandOutcome, type HostModel } from '../../src/tolaria/index.js';
import { ControlLink, type ControlMode } from '../../src/weatherlight/index.js';
import { kasminaHarness, RING } from '../kasmina/fixtures/harness.js';
import { deleteKeysWithPrefix } from '../support/redis-server.js';
import { testRedisUrl } from '../support/redis-url.js';

const RUN = 'acks-run';
const catalog = new KarnCatalog();
const SIGNAL = new AbortController().signal;
const cleanups: (() => Promise<unknown> | unknown)[] = [];
let hosts = 0;

beforeAll(async () => {
  await initTensorBackend();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Germinates a fresh seed at `hidden1` on the steps listed, waits otherwise. */
class GerminateOn implements TamiyoPolicy {
  readonly name = 'scripted';
  readonly version = 'scripted-1';
  constructor(private readonly steps: ReadonlySet<number>) {}
  propose(context: PolicyContext): PolicyProposal {
    const step = Number(context.packet.globalStep);
    const decision = this.steps.has(step)
      ? {
          kind: DecisionKind.GERMINATE,
          blueprintId: toId('BP001', 'blueprintId'),
          siteId: toId('hidden1', 'siteId'),
          seedId: toId(`s${step}`, 'seedId'),
        }
      : { kind: DecisionKind.WAIT };
    return { decision, policyVersion: this.version, actionId: 0 };
  }
}

const packet = (step: number): SystemStatePacket =>
  create(SystemStatePacketSchema, {
    version: 1,
    trainingRunId: RUN,
    packetId: `${RUN}-step-${step}`,
    globalStep: BigInt(step),
    metrics: create(TrainingMetricsSchema, { lossDelta: 0 }),
  });

function newHost(): HostModel {
  hosts += 1;
  const host = mlpHost({ inputShape: [2], hidden: [8, 8], numClasses: 2, seed: 1, hostId: `acks${hosts}` });
  cleanups.push(() => host.dispose());
  return host;
}

interface Wired {
  readonly bus: StreamBus;
  readonly tamiyo: TamiyoService;
  readonly store: FieldReportStore;
  readonly inbox: CommandInbox;
  readonly responder: ControlResponder;
  readonly link: ControlLink;
  readonly telemetry: MemoryTelemetrySink;
}

interface WireOptions {
  readonly host?: HostModel;
  readonly germinateOn?: readonly number[];
  readonly mode?: ControlMode;
  /** Wall clock of Tamiyo's commands' `issued_at` (and of their signatures' timestamps). */
  readonly commandClock?: FakeClock;
  readonly store?: StreamStore;
  readonly streamPrefix?: string;
}

/** Tamiyo (with field reports) behind a responder, Kasmina's inbox, and the trainer's ControlLink, on one bus. */
async function wire(options: WireOptions = {}): Promise<Wired> {
  const telemetry = new MemoryTelemetrySink();
  const store = options.store ?? new MemoryStreamStore();
  const bus = new StreamBus({
    store,
    ownsStore: !(store instanceof MemoryStreamStore),
    streamPrefix: options.streamPrefix ?? '',
    keyRing: RING,
    telemetry,
    blockMs: 20,
  });
  cleanups.push(() => bus.close());
  const dir = await mkdtemp(path.join(tmpdir(), 'tamiyo-acks-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const reports = await FieldReportStore.open(path.join(dir, 'reports.wal'));
  cleanups.push(() => reports.close());
  const policy = new GerminateOn(new Set(options.germinateOn ?? [1]));
  const tamiyo = new TamiyoService({
    policy,
    host: (options.host ?? newHost()).descriptor,
    candidates: [{ descriptor: catalog.get('BP001') }],
    risk: new RiskEngine(),
    commands: new CommandBuilder({
      trainingRunId: RUN,
      signer: new HmacSigner(RING, options.commandClock === undefined ? {} : { clock: options.commandClock }),
      guard: new DependencyGuard({ subsystem: 'tamiyo', sink: telemetry, trainingRunId: RUN }),
      ...(options.commandClock === undefined ? {} : { clock: options.commandClock }),
    }),
    telemetry,
    trainingRunId: RUN,
    stepBudgetMs: 1_000,
    fieldReports: {
      builder: new FieldReportBuilder({ trainingRunId: RUN, policyVersion: () => policy.version, telemetry }),
      store: reports,
    },
  });
  cleanups.push(() => tamiyo.close());
  const inbox = new CommandInbox({ bus, trainingRunId: RUN, telemetry });
  await inbox.start();
  const responder = new ControlResponder({ bus, controller: tamiyo, trainingRunId: RUN, telemetry });
  await responder.start();
  cleanups.push(() => responder.close());
  // As a growing run closes them: the inbox's RUN_ENDED acknowledgements reach Tamiyo first.
  cleanups.push(() => inbox.close());
  const link = new ControlLink({ bus, inbox, mode: options.mode ?? 'lockstep', timeoutMs: 5_000 });
  return { bus, tamiyo, store: reports, inbox, responder, link, telemetry };
}

/** Resolves once `done()` holds (polled), or fails after `timeoutMs`. */
async function until(done: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const noOutcomes: TamiyoCommandOutcomes = {
  applied: 0,
  rejected: 0,
  notApplied: 0,
  timedOut: 0,
  failed: 0,
  runEnded: 0,
  pending: 0,
  rejectionsByReason: {},
  notAppliedByReason: {},
  ignored: 0,
};

const outcome = (command: AdaptationCommand | undefined, status: CommandOutcome['status'], reason = ''): CommandOutcome => ({
  commandId: command?.commandId ?? 'missing',
  status,
  reason,
});

describe('ControlResponder: command fates over the bus', () => {
  it('a command a real Kasmina rejects as stale reaches Tamiyo rejected with its reason, and its field report says so; an applied one counts applied', async () => {
    const host = newHost();
    const h = await kasminaHarness({ host, trainingRunId: RUN });
    cleanups.push(() => h.close());
    // Tamiyo's first command is signed ten minutes in the past (Kasmina's window is a minute).
    const commandClock = new FakeClock({ wallMs: Date.now() - 600_000 });
    const { tamiyo, link, store } = await wire({ host, germinateOn: [1, 2], commandClock });
    /** What the trainer does with a command: Kasmina applies it, the outcome goes back to the controller. */
    const step = async (n: number): Promise<AdaptationCommand | undefined> => {
      const command = await link.evaluateStep(packet(n), { signal: SIGNAL });
      if (command === undefined) return undefined;
      const context = { host, trainingRunId: RUN, epoch: 0, globalStep: n, rng: seededRng(n) };
      try {
        await h.kasmina.apply(command, context, { signal: SIGNAL });
        link.commandOutcome(outcome(command, CommandOutcomeStatus.APPLIED));
      } catch (error) {
        if (!isEsperError(error, ErrorCode.COMMAND_REJECTED)) throw error;
        link.commandOutcome(outcome(command, CommandOutcomeStatus.REJECTED, String(error.details?.['reason'])));
      }
      return command;
    };

    const stale = await step(1);
    commandClock.advance(600_000);
    const fresh = await step(2);
    await until(() => tamiyo.stats().commandOutcomes.pending === 0);

    expect(tamiyo.stats().commands).toBe(2);
    expect(tamiyo.stats().commandOutcomes).toEqual({
      ...noOutcomes,
      applied: 1,
      rejected: 1,
      rejectionsByReason: { stale_command: 1 },
    });
    expect(h.kasmina.exportSeedStates().map((s) => s.seedId)).toEqual(['s2']);
    expect(tamiyo.decisions.map((d) => [d.commandId, d.fate])).toEqual([
      [stale?.commandId, { status: 'rejected', reason: 'stale_command', globalStep: 1 }],
      [fresh?.commandId, { status: 'applied', reason: '', globalStep: 2 }],
    ]);
    expect(formatCommandOutcomes(2, tamiyo.stats().commandOutcomes)).toBe('issued 2, applied 1, rejected 1 (stale_command: 1), pending 0');

    // The rejected command's window is aborted, not judged; its report is stored with the next decision.
    await step(3);
    const report = store.reports().find((r) => r.commandId === stale?.commandId);
    expect(report).toMatchObject({ outcome: FieldReportOutcome.ABORTED, notes: 'aborted:command_rejected:stale_command' });
    expect(store.reports().some((r) => r.commandId === fresh?.commandId)).toBe(false);
  }, 60_000);

  it('counts a redelivered acknowledgement once', async () => {
    const { bus, tamiyo, link } = await wire();
    const acks: CommandAck[] = [];
    const observer = bus.subscribe({
      group: 'observer',
      consumer: 'test',
      types: [BusMessageType.COMMAND_ACK],
      handler: (d) => {
        acks.push(d.message as CommandAck);
      },
    });
    cleanups.push(() => observer.close());
    await observer.ready;
    const command = await link.evaluateStep(packet(1), { signal: SIGNAL });
    link.commandOutcome(outcome(command, CommandOutcomeStatus.APPLIED));
    await until(() => acks.length === 1);
    await bus.publish(acks[0] as CommandAck);
    await until(() => tamiyo.stats().commandOutcomes.ignored === 1);
    expect(tamiyo.stats().commandOutcomes).toEqual({ ...noOutcomes, applied: 1, ignored: 1 });
    expect(tamiyo.decisions[0]?.fate).toEqual({ status: 'applied', reason: '', globalStep: 1 });
  });

  it("leaves acknowledgements of another run and of operator commands alone (even naming Tamiyo's command)", async () => {
    const { bus, tamiyo, link, inbox } = await wire();
    const command = await link.evaluateStep(packet(1), { signal: SIGNAL });
    const commandId = command?.commandId ?? 'missing';
    // Forged acknowledgements naming Tamiyo's pending command: another run's, and one issued by the operator.
    const forged = { commandId, status: CommandAckStatus.REJECTED, reason: 'forged', globalStep: 1n };
    await bus.publish(create(CommandAckSchema, { ...forged, trainingRunId: 'another-run', issuedBy: 'tamiyo' }));
    await bus.publish(create(CommandAckSchema, { ...forged, trainingRunId: RUN, issuedBy: 'operator' }));
    // A real operator command, handed out at the next step and acknowledged.
    const operator = buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId: RUN, seedId: 's1', issuedBy: 'operator' });
    await bus.publish(operator);
    await inbox.waitForReceived(2, AbortSignal.timeout(5_000));
    expect((await link.evaluateStep(packet(2), { signal: SIGNAL }))?.commandId).toBe(operator.commandId);
    link.commandOutcome(outcome(operator, CommandOutcomeStatus.APPLIED));
    // Tamiyo's own acknowledgement last: once it is counted, every earlier one has been read.
    link.commandOutcome(outcome(command, CommandOutcomeStatus.NOT_APPLIED, 'SEED_GATE_G0_SANITY: site occupied'));
    await until(() => tamiyo.stats().commandOutcomes.pending === 0);
    expect(tamiyo.stats().commands).toBe(1);
    expect(tamiyo.stats().commandOutcomes).toEqual({
      ...noOutcomes,
      notApplied: 1,
      notAppliedByReason: { 'SEED_GATE_G0_SANITY: site occupied': 1 },
    });
  });

  it('a command still queued when the run ends counts RUN_ENDED: never applied, its field report aborted', async () => {
    const { tamiyo, link, inbox, responder, store } = await wire({ mode: 'async' });
    expect(await link.evaluateStep(packet(1), { signal: SIGNAL })).toBeUndefined();
    await inbox.waitForReceived(1, AbortSignal.timeout(5_000));
    expect(tamiyo.stats().commandOutcomes).toEqual({ ...noOutcomes, pending: 1 });
    // Closed as a growing run closes them: the inbox acknowledges what is left, the responder waits for it.
    await inbox.close();
    await responder.close();
    expect(tamiyo.stats().commandOutcomes).toEqual({ ...noOutcomes, runEnded: 1 });
    expect(tamiyo.decisions[0]?.fate).toEqual({
      status: 'run_ended',
      reason: 'the run ended before the command was applied',
      globalStep: 1,
    });
    await tamiyo.close();
    expect(store.reports().map((r) => [r.outcome, r.notes])).toEqual([[FieldReportOutcome.ABORTED, 'aborted:command_run_ended']]);
  });

  it('told directly (as the trainer tells it), counts a timed-out command once and leaves its window open; ignores unknown commands', async () => {
    const { tamiyo, store } = await wire({ germinateOn: [1] });
    const command = await tamiyo.evaluateStep(packet(1), { signal: SIGNAL });
    tamiyo.commandOutcome(outcome(command, CommandOutcomeStatus.TIMED_OUT, 'deadline'));
    tamiyo.commandOutcome(outcome(command, CommandOutcomeStatus.APPLIED));
    tamiyo.commandOutcome({ commandId: 'not-ours', status: CommandOutcomeStatus.REJECTED, reason: 'stale_command' });
    expect(tamiyo.stats().commandOutcomes).toEqual({ ...noOutcomes, timedOut: 1, ignored: 2 });
    expect(tamiyo.decisions[0]?.fate).toEqual({ status: 'timed_out', reason: 'deadline' });
    await tamiyo.close('run_completed');
    expect(store.reports().map((r) => r.notes)).toEqual(['aborted:run_completed']);
  });
});

describe('ControlResponder over real Redis', () => {
  it('a rejected command reaches Tamiyo with its reason, and a redelivered acknowledgement counts once', async () => {
    const url = testRedisUrl();
    const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await admin.connect();
    cleanups.push(() => admin.quit());
    const streamPrefix = `esper-test:${randomUUID()}:`;
    cleanups.push(() => deleteKeysWithPrefix(admin, streamPrefix));
    const { bus, tamiyo, link } = await wire({ store: new RedisStreamStore({ url }), streamPrefix });
    const command = await link.evaluateStep(packet(1), { signal: SIGNAL });
    link.commandOutcome(outcome(command, CommandOutcomeStatus.REJECTED, 'nonce_replayed'));
    await until(() => tamiyo.stats().commandOutcomes.pending === 0, 10_000);
    await bus.publish(
      create(CommandAckSchema, {
        commandId: command?.commandId ?? 'missing',
        trainingRunId: RUN,
        status: CommandAckStatus.APPLIED,
        globalStep: 1n,
        issuedBy: 'tamiyo',
      }),
    );
    await until(() => tamiyo.stats().commandOutcomes.ignored === 1, 10_000);
    expect(tamiyo.stats().commandOutcomes).toEqual({ ...noOutcomes, rejected: 1, rejectionsByReason: { nonce_replayed: 1 }, ignored: 1 });
  }, 30_000);
});
