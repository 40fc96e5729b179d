/**
 * ControlLink's unwaited publishes on a bus whose store replies when the test says so: a
 * step does not wait for an earlier packet's reply below `maxInFlight`, packets reach the bus
 * one at a time and in order, a failure surfaces at a later step (whose packet is then not
 * published), and a lockstep request goes only after every earlier packet.
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import type { CommandInbox } from '../../src/kasmina/index.js';
import { ControlDecisionSchema, SystemStatePacketSchema, type BusMessage, type SystemStatePacket } from '../../src/leyline/index.js';
import type { Bus, PublishReceipt } from '../../src/oona/index.js';
import { ControlLink } from '../../src/weatherlight/index.js';

const packet = (step: number): SystemStatePacket =>
  create(SystemStatePacketSchema, { trainingRunId: 'run', packetId: `p${step}`, globalStep: BigInt(step) });

interface Call {
  readonly kind: 'publish' | 'request';
  readonly packetId: string;
  readonly settle: (error?: Error) => void;
}

/** A bus whose publishes and requests settle when the test calls `settle`. */
function manualBus() {
  const calls: Call[] = [];
  const record = <T>(kind: Call['kind'], message: BusMessage, value: T): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      calls.push({
        kind,
        packetId: (message as SystemStatePacket).packetId,
        settle: (error) => (error === undefined ? resolve(value) : reject(error)),
      });
    });
  const bus = {
    publish: (message: BusMessage) =>
      record<PublishReceipt>('publish', message, { status: 'shed', stream: 'system', messageId: 'm' } as unknown as PublishReceipt),
    request: (message: BusMessage) => record('request', message, { message: create(ControlDecisionSchema, { commandId: '' }) }),
  } as unknown as Bus;
  return { bus, calls };
}

const inbox = { evaluateStep: () => Promise.resolve(undefined) } as unknown as CommandInbox;
const options = { signal: new AbortController().signal };

/** Whether `promise` settles within a few turns of the event loop. */
async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('ControlLink unwaited publishes', () => {
  it('async: steps do not wait for replies below maxInFlight; packets reach the bus one at a time, in order', async () => {
    const { bus, calls } = manualBus();
    const link = new ControlLink({ bus, inbox, mode: 'async', timeoutMs: 1_000, maxInFlight: 2 });
    expect(await settlesSoon(link.evaluateStep(packet(1), options))).toBe(true);
    expect(await settlesSoon(link.evaluateStep(packet(2), options))).toBe(true);
    // p2 waits behind p1's reply; at the bound, the third step waits for the oldest.
    expect(calls.map((c) => c.packetId)).toEqual(['p1']);
    const third = link.evaluateStep(packet(3), options);
    expect(await settlesSoon(third)).toBe(false);
    calls[0]?.settle();
    expect(await settlesSoon(third)).toBe(true);
    expect(calls.map((c) => c.packetId)).toEqual(['p1', 'p2']);
    calls[1]?.settle();
    await settlesSoon(Promise.resolve());
    calls[2]?.settle();
    await settlesSoon(Promise.resolve());
    expect(calls.map((c) => c.packetId)).toEqual(['p1', 'p2', 'p3']);
    expect(link.stats().packetsPublished).toBe(3);
  });

  it('a failed publish surfaces at the next step that finds it settled, whose packet is then not published; later steps go on', async () => {
    const { bus, calls } = manualBus();
    const link = new ControlLink({ bus, inbox, mode: 'async', timeoutMs: 1_000 });
    await link.evaluateStep(packet(1), options);
    calls[0]?.settle(new Error('store down'));
    await settlesSoon(Promise.resolve());
    await expect(link.evaluateStep(packet(2), options)).rejects.toThrow('store down');
    expect(calls.map((c) => c.packetId)).toEqual(['p1']);
    await link.evaluateStep(packet(3), options);
    expect(calls.map((c) => c.packetId)).toEqual(['p1', 'p3']);
    calls[1]?.settle();
    await settlesSoon(Promise.resolve());
    expect(link.stats().packetsPublished).toBe(1);
  });

  it('lockstep: a request goes only after every earlier unwaited packet settled', async () => {
    const { bus, calls } = manualBus();
    const link = new ControlLink({ bus, inbox, mode: 'lockstep', timeoutMs: 1_000, stepRequests: false });
    await link.evaluateStep(packet(1), options);
    await link.evaluateStep(packet(2), options);
    const epoch = link.evaluateEpoch(packet(3), options);
    expect(await settlesSoon(epoch)).toBe(false);
    calls[0]?.settle();
    await settlesSoon(Promise.resolve());
    expect(calls.map((c) => `${c.kind} ${c.packetId}`)).toEqual(['publish p1', 'publish p2']);
    calls[1]?.settle();
    await settlesSoon(Promise.resolve());
    expect(calls.map((c) => `${c.kind} ${c.packetId}`)).toEqual(['publish p1', 'publish p2', 'request p3']);
    calls[2]?.settle();
    expect(await epoch).toBeUndefined();
  });

  it('refuses a maxInFlight below 1', () => {
    const { bus } = manualBus();
    expect(() => new ControlLink({ bus, inbox, mode: 'async', timeoutMs: 10, maxInFlight: 0 })).toThrow(/maxInFlight/);
  });
});
