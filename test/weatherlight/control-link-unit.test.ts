/**
 * ControlLink (trainer side) and ControlResponder (Tamiyo side) on an in-process bus with a
 * scripted controller: lockstep hands out the command issued for the packet, async picks it
 * up at a later step, a throwing controller is answered "no change" and reported, a lockstep
 * wait without a responder times out, and the inbox's `take` can be cancelled.
 */
import { create } from '@bufbuild/protobuf';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, loadSettings, MemoryTelemetrySink } from '../../src/core/index.js';
import { buildOperatorCommand, CommandInbox, OperatorAction } from '../../src/kasmina/index.js';
import {
  BusMessageType,
  CommandAckStatus,
  SystemStatePacketSchema,
  type AdaptationCommand,
  type CommandAck,
  type SystemStatePacket,
} from '../../src/leyline/index.js';
import { openBusFromSettings, type Bus } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { ControlResponder } from '../../src/tamiyo/index.js';
import type { Controller } from '../../src/tolaria/index.js';
import { ControlLink, type ControlMode } from '../../src/weatherlight/index.js';

const RUN = 'link-run';
const keyRing = new KeyRing([{ keyId: 'k1', secret: Buffer.from('control-link-unit-secret-0123456789', 'utf8') }]);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const packet = (step: number, epochEnd = false): SystemStatePacket =>
  create(SystemStatePacketSchema, { trainingRunId: RUN, packetId: `${RUN}-step-${step}`, globalStep: BigInt(step), epochEnd });

const germinate = (id: string): AdaptationCommand =>
  buildOperatorCommand({
    action: OperatorAction.GERMINATE,
    trainingRunId: RUN,
    seedId: `s-${id}`,
    siteId: 'hidden1',
    blueprintId: 'BP001',
    commandId: id,
    issuedBy: 'tamiyo',
  });

/** Issues `commands[step]` for a step packet, `epochCommand` for an epoch packet. */
function scripted(commands: Record<number, AdaptationCommand>, epochCommand?: AdaptationCommand): Controller & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    evaluateStep: (p) => {
      calls.push(`step ${p.globalStep}`);
      return Promise.resolve(commands[Number(p.globalStep)]);
    },
    evaluateEpoch: (p) => {
      calls.push(`epoch ${p.globalStep}`);
      return Promise.resolve(epochCommand);
    },
  };
}

async function wire(controller: Controller | undefined, mode: ControlMode, timeoutMs = 2_000, stepRequests = true) {
  const telemetry = new MemoryTelemetrySink();
  const bus: Bus = openBusFromSettings({ oona: { ...loadSettings({ env: {} }).oona, busUrl: 'memory://' } }, { keyRing, telemetry });
  cleanups.push(() => bus.close());
  const inbox = new CommandInbox({ bus, trainingRunId: RUN, telemetry });
  await inbox.start();
  if (controller !== undefined) {
    const responder = new ControlResponder({ bus, controller, trainingRunId: RUN, telemetry });
    await responder.start();
    cleanups.push(() => responder.close());
  }
  // Closed before the responder, as a growing run closes them: its RUN_ENDED acknowledgements
  // are what the responder's close waits for.
  cleanups.push(() => inbox.close());
  const link = new ControlLink({ bus, inbox, mode, timeoutMs, stepRequests });
  return { bus, inbox, link, telemetry };
}

const signal = (): AbortSignal => new AbortController().signal;

describe('ControlLink + ControlResponder', () => {
  it('lockstep: each packet gets the command issued for it, at that step; epoch packets go to evaluateEpoch', async () => {
    const controller = scripted({ 2: germinate('c2') }, germinate('e3'));
    const { link } = await wire(controller, 'lockstep');
    expect(await link.evaluateStep(packet(1), { signal: signal() })).toBeUndefined();
    expect((await link.evaluateStep(packet(2), { signal: signal() }))?.commandId).toBe('c2');
    expect(await link.evaluateStep(packet(3), { signal: signal() })).toBeUndefined();
    expect((await link.evaluateEpoch(packet(3, true), { signal: signal() }))?.commandId).toBe('e3');
    expect(controller.calls).toEqual(['step 1', 'step 2', 'step 3', 'epoch 3']);
    expect(link.stats()).toEqual({ packetsPublished: 4, decisions: 4, commandsNamed: 2 });
  });

  it('lockstep with an epoch-only controller: step packets go without waiting, and all are answered before the epoch packet', async () => {
    const controller = scripted({}, germinate('e2'));
    const { link } = await wire(controller, 'lockstep', 2_000, false);
    expect(await link.evaluateStep(packet(1), { signal: signal() })).toBeUndefined();
    expect(await link.evaluateStep(packet(2), { signal: signal() })).toBeUndefined();
    expect((await link.evaluateEpoch(packet(2, true), { signal: signal() }))?.commandId).toBe('e2');
    expect(controller.calls).toEqual(['step 1', 'step 2', 'epoch 2']);
    expect(link.stats()).toEqual({ packetsPublished: 3, decisions: 1, commandsNamed: 1 });
  });

  it('async: the packet is published and the step goes on; the command applies at a later step', async () => {
    const controller = scripted({ 1: germinate('late') });
    const { link, inbox } = await wire(controller, 'async');
    expect(await link.evaluateStep(packet(1), { signal: signal() })).toBeUndefined();
    await inbox.waitForReceived(1);
    expect((await link.evaluateStep(packet(2), { signal: signal() }))?.commandId).toBe('late');
  });

  it('async: settle waits for the answer to the last epoch packet, so a command decided while the run ends is received and acknowledged RUN_ENDED', async () => {
    let decide: (command: AdaptationCommand) => void = () => undefined;
    let asked: () => void = () => undefined;
    const askedNow = new Promise<void>((resolve) => (asked = resolve));
    const slow: Controller = {
      evaluateStep: () => Promise.resolve(undefined),
      evaluateEpoch: () =>
        new Promise<AdaptationCommand | undefined>((resolve) => {
          decide = resolve;
          asked();
        }),
    };
    const { link, inbox, bus } = await wire(slow, 'async');
    const acks: CommandAck[] = [];
    const watch = bus.subscribe({
      group: 'test-acks',
      consumer: 't',
      types: [BusMessageType.COMMAND_ACK],
      handler: (d) => void acks.push(d.message as CommandAck),
    });
    cleanups.push(() => watch.close());
    await watch.ready;
    // The run's last packet: the trainer goes on (and ends) while Tamiyo still decides.
    expect(await link.evaluateEpoch(packet(9, true), { signal: signal() })).toBeUndefined();
    let settled: boolean | undefined;
    const settling = link.settle(5_000).then((ok) => (settled = ok));
    await askedNow;
    expect(settled).toBeUndefined();
    decide(germinate('last'));
    expect(await settling).toBe(true);
    expect(inbox.stats()).toMatchObject({ received: 1, delivered: 0, decisions: 1 });
    await inbox.close();
    expect(inbox.stats().runEnded).toBe(1);
    await expect.poll(() => acks.map((a) => [a.commandId, a.status])).toEqual([['last', CommandAckStatus.RUN_ENDED]]);
  });

  it('async: settle gives up after its timeout without a controller, and returns at once when nothing was asked', async () => {
    const { link } = await wire(undefined, 'async');
    expect(await link.settle(10)).toBe(true);
    await link.evaluateEpoch(packet(3, true), { signal: signal() });
    expect(await link.settle(50)).toBe(false);
    const lockstep = (await wire(scripted({}), 'lockstep', 2_000, false)).link;
    await lockstep.evaluateEpoch(packet(3, true), { signal: signal() });
    expect(await lockstep.settle(10)).toBe(true);
  });

  it('a controller that throws is answered "no change" and reported as control_failed', async () => {
    const failing: Controller = { evaluateStep: () => Promise.reject(new Error('policy broke')) };
    const { link, telemetry } = await wire(failing, 'lockstep');
    expect(await link.evaluateStep(packet(7), { signal: signal() })).toBeUndefined();
    const events = telemetry.packets.flatMap((p) => p.events.filter((e) => e.description === 'control_failed'));
    expect(events.map((e) => e.attributes)).toEqual([{ packet_id: `${RUN}-step-7`, error: 'policy broke' }]);
  });

  it('lockstep without a responder times out with OONA_REQUEST_TIMEOUT (the trainer goes on without a command)', async () => {
    const { link } = await wire(undefined, 'lockstep', 50);
    const error = await link.evaluateStep(packet(1), { signal: signal() }).catch((e: unknown) => e);
    expect(isEsperError(error, ErrorCode.OONA_REQUEST_TIMEOUT)).toBe(true);
  });

  it("the inbox's take is cancelled by its signal and by close, and refuses bad options", async () => {
    const { inbox } = await wire(undefined, 'lockstep');
    const stop = new AbortController();
    const waiting = inbox.take('never', stop.signal).catch((e: unknown) => e);
    stop.abort();
    expect(isEsperError(await waiting, ErrorCode.WORKER_CANCELLED)).toBe(true);
    const closing = inbox.take('never').catch((e: unknown) => e);
    await inbox.close();
    expect(isEsperError(await closing, ErrorCode.WORKER_CANCELLED)).toBe(true);
    expect(() => new ControlLink({ bus: {} as Bus, inbox, mode: 'sometimes' as ControlMode, timeoutMs: 10 })).toThrow(/mode/);
    expect(() => new ControlLink({ bus: {} as Bus, inbox, mode: 'async', timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
