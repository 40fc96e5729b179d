/**
 * The command inbox over an in-memory bus: commands of its run handed out one per step, each
 * acknowledged as a reply to its message with its fate, RUN_ENDED for what is left at close,
 * and a WARNING when an acknowledgement cannot be published.
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, MemoryTelemetrySink } from '../../src/core/index.js';
import { buildOperatorCommand, CommandInbox, KasminaEvent, OperatorAction, type CommandInboxOptions } from '../../src/kasmina/index.js';
import {
  BusMessageType,
  CommandAckStatus,
  SystemStatePacketSchema,
  TelemetryLevel,
  type AdaptationCommand,
  type CommandAck,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus } from '../../src/oona/index.js';
import { CommandOutcomeStatus } from '../../src/tolaria/index.js';
import { thrownBy } from '../support/thrown.js';
import { RING } from './fixtures/harness.js';
import { useCleanups } from './fixtures/hooks.js';

const RUN = 'run-inbox';
const cleanups = useCleanups();

async function open(): Promise<{ bus: StreamBus; inbox: CommandInbox; telemetry: MemoryTelemetrySink }> {
  const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
  cleanups.push(() => bus.close());
  const telemetry = new MemoryTelemetrySink();
  const inbox = new CommandInbox({ bus, trainingRunId: RUN, telemetry });
  cleanups.push(() => inbox.close());
  await inbox.start();
  return { bus, inbox, telemetry };
}

const pause = (seedId: string, trainingRunId = RUN): AdaptationCommand =>
  buildOperatorCommand({ action: OperatorAction.PAUSE, trainingRunId, seedId, issuedBy: 'tester' });

/** Sends `command` as `esper command` does and resolves with its acknowledgement. */
async function send(bus: StreamBus, command: AdaptationCommand, timeoutMs = 5_000): Promise<CommandAck> {
  const reply = await bus.request(command, { replyType: BusMessageType.COMMAND_ACK, timeoutMs });
  return reply.message as CommandAck;
}

const state = (globalStep: number) => create(SystemStatePacketSchema, { globalStep: BigInt(globalStep) });
const options = { signal: new AbortController().signal };

describe('CommandInbox', () => {
  it('hands out one command per step and acknowledges each with its outcome, step and issuer', async () => {
    const { bus, inbox } = await open();
    const first = pause('a');
    const second = pause('b');
    const acks = [send(bus, first), send(bus, second)];
    await inbox.waitForReceived(2, AbortSignal.timeout(5_000));
    expect((await inbox.evaluateStep(state(7), options))?.commandId).toBe(first.commandId);
    inbox.commandOutcome({ commandId: first.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' });
    expect((await inbox.evaluateStep(state(8), options))?.commandId).toBe(second.commandId);
    inbox.commandOutcome({
      commandId: second.commandId,
      status: CommandOutcomeStatus.NOT_APPLIED,
      reason: 'SEED_GATE_G0_SANITY: site occupied',
    });
    expect(await inbox.evaluateStep(state(9), options)).toBeUndefined();
    const [a, b] = await Promise.all(acks);
    expect(a).toMatchObject({
      commandId: first.commandId,
      trainingRunId: RUN,
      status: CommandAckStatus.APPLIED,
      reason: '',
      globalStep: 7n,
      issuedBy: 'tester',
    });
    expect(b).toMatchObject({
      commandId: second.commandId,
      status: CommandAckStatus.NOT_APPLIED,
      reason: 'SEED_GATE_G0_SANITY: site occupied',
      globalStep: 8n,
    });
    expect(inbox.stats()).toMatchObject({ received: 2, delivered: 2, queued: 0, acknowledged: 2 });
  });

  it('maps every outcome status to its acknowledgement status', async () => {
    const { bus, inbox } = await open();
    const expected: [CommandOutcomeStatus, CommandAckStatus][] = [
      [CommandOutcomeStatus.REJECTED, CommandAckStatus.REJECTED],
      [CommandOutcomeStatus.TIMED_OUT, CommandAckStatus.TIMED_OUT],
      [CommandOutcomeStatus.FAILED, CommandAckStatus.FAILED],
    ];
    for (const [outcome, ack] of expected) {
      const command = pause(outcome);
      const reply = send(bus, command);
      await inbox.waitForReceived(inbox.stats().received + 1, AbortSignal.timeout(5_000));
      await inbox.evaluateStep(state(1), options);
      inbox.commandOutcome({ commandId: command.commandId, status: outcome, reason: 'why' });
      expect((await reply).status).toBe(ack);
    }
  });

  it('leaves commands for other runs to their run: neither queued nor acknowledged', async () => {
    const { bus, inbox } = await open();
    const other = send(bus, pause('x', 'run-other'), 300);
    await expect(other).rejects.toMatchObject({ code: 'ESPER_OONA_REQUEST_TIMEOUT' });
    expect(inbox.stats()).toMatchObject({ received: 0, otherRuns: 1, queued: 0, acknowledged: 0 });
  });

  it('acknowledges RUN_ENDED at close for commands queued or handed out without an outcome; close is idempotent', async () => {
    const { bus, inbox } = await open();
    const handed = pause('h');
    const queued = pause('q');
    const acks = [send(bus, handed), send(bus, queued)];
    await inbox.waitForReceived(2, AbortSignal.timeout(5_000));
    await inbox.evaluateStep(state(3), options);
    const closing = inbox.close();
    expect(inbox.close()).toBe(closing);
    expect(inbox[Symbol.asyncDispose]()).toBe(closing);
    await closing;
    const [h, q] = await Promise.all(acks);
    expect([h?.status, q?.status]).toEqual([CommandAckStatus.RUN_ENDED, CommandAckStatus.RUN_ENDED]);
    expect(q?.globalStep).toBe(3n);
    expect(inbox.stats().acknowledged).toBe(2);
    expect(inbox.state).toBe('closed');
    await expect(inbox.start()).rejects.toMatchObject({ code: ErrorCode.INVALID_STATE });
  });

  it('refuses a blank run id, an empty consumer and a queue bound below 1, naming the field', () => {
    const bus = new StreamBus({ store: new MemoryStreamStore(), keyRing: RING, telemetry: new MemoryTelemetrySink(), blockMs: 20 });
    cleanups.push(() => bus.close());
    const telemetry = new MemoryTelemetrySink();
    const fieldOf = (options: Partial<CommandInboxOptions>): unknown =>
      thrownBy(() => new CommandInbox({ bus, trainingRunId: RUN, telemetry, ...options }), ErrorCode.INVALID_ARGUMENT).details['field'];
    expect(fieldOf({ trainingRunId: ' ' })).toBe('trainingRunId');
    expect(fieldOf({ consumer: '' })).toBe('consumer');
    // A bound of 0 would refuse every command; NaN would never refuse one.
    expect(fieldOf({ maxQueued: 0 })).toBe('maxQueued');
    expect(fieldOf({ maxQueued: Number.NaN })).toBe('maxQueued');
  });

  it('reports WARNING command_ack_failed when the acknowledgement cannot be published, without throwing', async () => {
    const { bus, inbox, telemetry } = await open();
    const command = pause('late');
    void send(bus, command).catch(() => undefined);
    await inbox.waitForReceived(1, AbortSignal.timeout(5_000));
    await inbox.evaluateStep(state(1), options);
    await bus.close();
    inbox.commandOutcome({ commandId: command.commandId, status: CommandOutcomeStatus.APPLIED, reason: '' });
    await inbox.close();
    const failed = telemetry.events(KasminaEvent.COMMAND_ACK_FAILED);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: TelemetryLevel.WARNING, attributes: { command_id: command.commandId, status: 'APPLIED' } });
  });
});
