import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import { BusMessageType, MessagePriority } from '../../src/leyline/index.js';
import {
  setup,
  waitFor,
  collect,
  command,
  telemetry,
  fieldReport,
  emergencySignal,
  kernelRequest,
  kernelReady,
  commandId,
  rejectionOf,
  closeBuses,
} from './fixtures/stream-bus-harness.js';

afterEach(closeBuses);

describe('StreamBus publish routing', () => {
  it('routes by priority: HIGH/CRITICAL to emergency, the rest to the family stream', async () => {
    const { bus, store, names } = setup();
    const cases = [
      [command(), {}, 'normal', MessagePriority.NORMAL],
      [command(), { priority: MessagePriority.LOW }, 'normal', MessagePriority.LOW],
      [command(), { priority: MessagePriority.CRITICAL }, 'emergency', MessagePriority.CRITICAL],
      [telemetry(), {}, 'telemetry', MessagePriority.NORMAL],
      [telemetry(MessagePriority.HIGH), {}, 'emergency', MessagePriority.HIGH],
      [telemetry(MessagePriority.CRITICAL), {}, 'emergency', MessagePriority.CRITICAL],
      [fieldReport(), {}, 'fieldReports', MessagePriority.NORMAL],
      [kernelRequest('r'), {}, 'kernelRequests', MessagePriority.NORMAL],
      [kernelReady('r'), {}, 'kernelReady', MessagePriority.NORMAL],
      [emergencySignal(), {}, 'emergency', MessagePriority.CRITICAL],
    ] as const;
    for (const [message, options, stream, priority] of cases) {
      const receipt = await bus.publish(message, options);
      expect(receipt, `${message.$typeName} → ${stream}`).toMatchObject({ status: 'published', stream, priority, demoted: false });
    }
    expect(await store.length(names.normal)).toBe(2);
    expect(await store.length(names.emergency)).toBe(4);
    expect(await store.length(names.telemetry)).toBe(1);
    expect(bus.metrics()).toMatchObject({ publishTotal: 10, emergencyPublished: 4 });
  });

  it('treats a telemetry packet without priority as NORMAL', async () => {
    const { bus } = setup();
    const packet = telemetry();
    packet.priority = MessagePriority.UNSPECIFIED;
    expect(await bus.publish(packet)).toMatchObject({ stream: 'telemetry', priority: MessagePriority.NORMAL });
  });

  it('delivers the envelope metadata with the message', async () => {
    const { bus } = setup();
    const { got, sub } = collect(bus, { types: [BusMessageType.ADAPTATION_COMMAND] });
    await sub.ready;
    const sent = command('c-1');
    const before = Date.now();
    const receipt = await bus.publish(sent, { correlationId: 'corr-1', priority: MessagePriority.HIGH });
    await waitFor(() => got.length === 1, 'the delivery');
    const delivery = got[0]!;
    expect(delivery).toMatchObject({
      type: BusMessageType.ADAPTATION_COMMAND,
      priority: MessagePriority.HIGH,
      correlationId: 'corr-1',
      trainingRunId: 'run-1',
      attempt: 1,
      stream: 'emergency',
      messageId: receipt.messageId,
    });
    expect(delivery.message).toEqual(sent);
    expect(delivery.publishedAtMs).toBeGreaterThanOrEqual(before);
    expect(receipt.status === 'published' && delivery.entryId === receipt.entryId).toBe(true);
  });

  it('rejects a message that is not a bus message with OONA_INVALID_MESSAGE', async () => {
    const { bus } = setup();
    const error = await rejectionOf(bus.publish({ $typeName: 'esper.leyline.v1.Nope' } as never));
    expect(isEsperError(error, ErrorCode.OONA_INVALID_MESSAGE)).toBe(true);
  });
});

describe('StreamBus emergency budget', () => {
  it('demotes HIGH over the budget to its family stream (counted) and never CRITICAL', async () => {
    const clock = new FakeClock();
    const { bus } = setup({ clock, emergencyMaxPerMin: 2 });
    const high = { priority: MessagePriority.HIGH };
    expect(await bus.publish(command(), high)).toMatchObject({ stream: 'emergency', demoted: false });
    expect(await bus.publish(telemetry(MessagePriority.HIGH))).toMatchObject({ stream: 'emergency', demoted: false });
    expect(await bus.publish(command(), high)).toMatchObject({ stream: 'normal', demoted: true });
    expect(await bus.publish(telemetry(MessagePriority.HIGH))).toMatchObject({ stream: 'telemetry', demoted: true });
    for (let i = 0; i < 5; i += 1) {
      expect(await bus.publish(command(), { priority: MessagePriority.CRITICAL })).toMatchObject({
        stream: 'emergency',
        demoted: false,
      });
    }
    // An emergency signal's family stream is the emergency stream: nowhere to demote it to.
    expect(await bus.publish(emergencySignal(), high)).toMatchObject({ stream: 'emergency', demoted: false });
    clock.advance(30_000);
    expect(await bus.publish(command(), high)).toMatchObject({ stream: 'emergency', demoted: false });
    expect(bus.metrics()).toMatchObject({ emergencyDemoted: 2, emergencyPublished: 9 });
  });
});

describe('StreamBus back-pressure', () => {
  it('sheds LOW/NORMAL telemetry on a backlogged stream, counted and without an event', async () => {
    const { bus, sink } = setup({ maxBacklog: 3, depthRefreshMs: 0 });
    for (let i = 0; i < 3; i += 1) expect((await bus.publish(telemetry())).status).toBe('published');
    expect(await bus.publish(telemetry())).toMatchObject({ status: 'shed', stream: 'telemetry' });
    expect(await bus.publish(telemetry(MessagePriority.LOW))).toMatchObject({ status: 'shed', stream: 'telemetry' });
    expect(bus.metrics()).toMatchObject({ publishShed: 2, publishTotal: 3 });
    expect(sink.packets.flatMap((p) => p.events.map((e) => e.description))).toEqual(['bus_started']);
  });

  it('never sheds a field report or a command: it waits, then fails with OONA_PUBLISH_TIMEOUT', async () => {
    const { bus, store, names } = setup({ maxBacklog: 3, depthRefreshMs: 0 });
    for (let i = 0; i < 3; i += 1) {
      await bus.publish(fieldReport());
      await bus.publish(command());
    }
    const started = performance.now();
    const report = await rejectionOf(bus.publish(fieldReport(), { deadlineMs: 60 }));
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    expect(isEsperError(report, ErrorCode.OONA_PUBLISH_TIMEOUT)).toBe(true);
    const cmd = await rejectionOf(bus.publish(command(), { deadlineMs: 30 }));
    expect(isEsperError(cmd, ErrorCode.OONA_PUBLISH_TIMEOUT)).toBe(true);
    expect(await store.length(names.fieldReports)).toBe(3);
    expect(await store.length(names.normal)).toBe(3);
    expect(bus.metrics()).toMatchObject({ publishTimeouts: 2, publishShed: 0 });
  });

  it('waits for HIGH telemetry demoted onto a backlogged stream instead of shedding it', async () => {
    const { bus } = setup({ maxBacklog: 1, depthRefreshMs: 0, emergencyMaxPerMin: 1, clock: new FakeClock() });
    await bus.publish(telemetry(MessagePriority.HIGH));
    await bus.publish(telemetry());
    const error = await rejectionOf(bus.publish(telemetry(MessagePriority.HIGH), { deadlineMs: 20 }));
    expect(isEsperError(error, ErrorCode.OONA_PUBLISH_TIMEOUT)).toBe(true);
  });

  it('completes a waiting publish once a consumer drains the backlog within the deadline', async () => {
    const { bus, store, names } = setup({ maxBacklog: 2, depthRefreshMs: 0 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const entered: string[] = [];
    const handled: string[] = [];
    const sub = bus.subscribe({
      group: 'g',
      consumer: 'c',
      types: [BusMessageType.ADAPTATION_COMMAND],
      handler: async (delivery) => {
        entered.push(commandId(delivery));
        await gate;
        handled.push(commandId(delivery));
      },
    });
    try {
      await sub.ready;
      await bus.publish(command('a'));
      await bus.publish(command('b'));
      await waitFor(() => entered.length === 1, 'the first handler running');
      const group = (await store.groups(names.normal)).find((g) => g.name === 'g');
      expect((group?.lag ?? 0) + (group?.pending ?? 0)).toBe(2);
      let settled = false;
      const waiting = bus.publish(command('c'), { deadlineMs: 5_000 }).finally(() => (settled = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(settled).toBe(false);
      release();
      expect(await waiting).toMatchObject({ status: 'published', stream: 'normal' });
      await waitFor(() => handled.length === 3, 'all three handled');
      expect(handled).toEqual(['a', 'b', 'c']);
    } finally {
      release();
    }
  });

  it('gives up a waiting publish when its signal aborts', async () => {
    const { bus } = setup({ maxBacklog: 1, depthRefreshMs: 0 });
    await bus.publish(command());
    const controller = new AbortController();
    const waiting = rejectionOf(bus.publish(command(), { deadlineMs: 60_000, signal: controller.signal }));
    const reason = new Error('caller gave up');
    controller.abort(reason);
    expect(await waiting).toBe(reason);
  });

  it('measures depth as the slowest group’s lag plus pending', async () => {
    const { bus, store, names } = setup({ depthRefreshMs: 0 });
    await store.ensureGroup(names.normal, 'fast', '$');
    await store.ensureGroup(names.normal, 'slow', '$');
    for (let i = 0; i < 4; i += 1) await bus.publish(command());
    const read = await store.readGroup('fast', 'f', [names.normal], { count: 10, blockMs: 0 });
    await store.ack(
      names.normal,
      'fast',
      read.map((e) => e.id),
    );
    await store.readGroup('slow', 's', [names.normal], { count: 1, blockMs: 0 });
    await bus.publish(command());
    // slow: 1 pending + 3 undelivered before the last publish, counted in after it.
    expect(bus.metrics().depth.normal).toBe(5);
  });
});
