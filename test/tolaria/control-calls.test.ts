/**
 * How the trainer calls its collaborators (`control-calls.ts`): on the worker with a
 * deadline from submission; a miss does not stall the step, is counted, and puts the
 * trainer in conservative mode.
 */
import { describe, expect, it } from 'vitest';
import { type AsyncWorker, systemClock } from '../../src/core/index.js';
import { EmergencyLevel, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { callOnWorker, ControlCalls } from '../../src/tolaria/control-calls.js';
import { TolariaEvent, TolariaMetric } from '../../src/tolaria/names.js';
import type { EventAttributes } from '../../src/tolaria/trainer-telemetry.js';
import { TrainingState } from '../../src/tolaria/training-state.js';
import { StuckController } from './fixtures/fakes.js';
import { eventsIn, metricIn, trainerKit } from './fixtures/trainer-kit.js';

const kit = trainerKit({ trainingRunId: 'run-test', hostPrefix: 'calls', withEmergency: true });

describe('ControlCalls: deadlines', () => {
  it('a controller that misses its deadline does not stall the step: the step proceeds, the miss is counted, the packet is HIGH', async () => {
    const controller = new StuckController();
    kit.defer(() => controller.release());
    const { trainer, telemetry, emergency, steps } = kit.trainer({ controller, worker: kit.worker(), controllerDeadlineMs: 25, epochs: 1 });
    const summary = await trainer.run();
    // The run finished although the controller never answered.
    expect(summary.state).toBe('completed');
    expect(steps).toHaveLength(8);
    expect(summary.controllerTimeouts).toBe(1);
    expect(controller.calls).toBe(1); // conservative mode skips the controller for the rest of the epoch
    const [miss] = eventsIn(telemetry.packets, TolariaEvent.TAMIYO_TIMEOUT);
    expect(miss?.event.level).toBe(TelemetryLevel.WARNING);
    expect(miss?.packet.priority).toBe(MessagePriority.HIGH);
    expect(metricIn(miss?.packet, TolariaMetric.TIMEOUT_TAMIYO_TOTAL.name)).toBe(1);
    expect(miss?.event.attributes['deadline_ms']).toBe('25');
    expect(eventsIn(telemetry.packets, TolariaEvent.CONSERVATIVE_MODE_ENTERED)).toHaveLength(1);
    // The epoch failed with the miss as its reason, and the emergency protocol saw it.
    const epochPacket = telemetry.packets.at(-1)!;
    expect(epochPacket.systemHealth?.summary).toBe('tamiyo_timeout');
    expect(metricIn(epochPacket, TolariaMetric.MODE_CONSERVATIVE.name)).toBe(1);
    expect(emergency.signals.map((s) => [s.level, s.reason])).toEqual([[EmergencyLevel.ELEVATED, 'tamiyo_timeout']]);
  });
});

describe('callOnWorker', () => {
  it('tells a missed deadline, a cancellation and an error apart, and never throws', async () => {
    const worker = kit.worker();
    const neverDone = (signal: AbortSignal) =>
      new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const timedOut = await callOnWorker(worker, systemClock, neverDone, { name: 't', deadlineMs: 10, signal: undefined });
    expect(timedOut).toMatchObject({ ok: false, error: 'timeout' });
    expect(timedOut.latencyMs).toBeGreaterThanOrEqual(9);
    const cancelled = await callOnWorker(worker, systemClock, neverDone, { name: 'c', deadlineMs: 1000, signal: AbortSignal.abort() });
    expect(cancelled).toMatchObject({ ok: false, error: 'cancelled' });
    const failed = await callOnWorker(worker, systemClock, () => Promise.reject(new RangeError('nope')), {
      name: 'e',
      deadlineMs: 1000,
      signal: undefined,
    });
    expect(failed).toMatchObject({ ok: false, error: 'error', message: 'RangeError: nope' });
    expect(failed.cause).toBeInstanceOf(RangeError);
    const done = await callOnWorker(worker, systemClock, () => Promise.resolve(42), { name: 'ok', deadlineMs: 1000, signal: undefined });
    expect(done).toMatchObject({ ok: true, value: 42 });
  });
});

describe('ControlCalls: misses and errors', () => {
  function calls(worker: AsyncWorker) {
    const raised: { description: string; level: TelemetryLevel; attributes: EventAttributes }[] = [];
    const state = new TrainingState({ datasetSize: 10, seed: 0, lossDivergence: false });
    const events = {
      event: (description: string, level: TelemetryLevel, attributes: EventAttributes) => raised.push({ description, level, attributes }),
    };
    const control = new ControlCalls({ worker, clock: systemClock, controllerDeadlineMs: 1000, executorDeadlineMs: 10, state, events });
    return { control, raised, state };
  }

  it('an executor error is reported and fails the epoch but keeps the controller; an executor miss enters conservative mode once', async () => {
    const { control, raised, state } = calls(kit.worker());
    await control.executor(() => Promise.reject(new Error('kaput')), 'tolaria.kasmina.apply-x', undefined, { command_id: 'x' });
    expect(control.conservative).toBe(false);
    expect(state.epoch.state.failureReason).toBe('kasmina_error');
    expect(raised.map((e) => e.description)).toEqual([TolariaEvent.KASMINA_ERROR]);
    expect(raised[0]?.attributes).toMatchObject({ call: 'tolaria.kasmina.apply-x', command_id: 'x', error: 'Error: kaput' });
    const stuck = (options: { signal: AbortSignal }) =>
      new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve()));
    await control.executor(stuck, 'tolaria.kasmina.advance-1', undefined, {});
    await control.executor(stuck, 'tolaria.kasmina.advance-2', undefined, {});
    expect(control.conservative).toBe(true);
    expect(raised.filter((e) => e.description === TolariaEvent.CONSERVATIVE_MODE_ENTERED)).toHaveLength(1);
    expect(control.stats()).toMatchObject({ executorTimeouts: 2, controllerTimeouts: 0 });
    expect(control.metrics().find((m) => m.name === TolariaMetric.TIMEOUT_KASMINA_LAST_MS.name)?.value).toBeGreaterThanOrEqual(9);
    control.clearConservative(0);
    expect(control.conservative).toBe(false);
    expect(raised.at(-1)).toMatchObject({ description: TolariaEvent.CONSERVATIVE_MODE_CLEARED, attributes: { epoch: 0 } });
  });

  it('a controller error enters conservative mode (tolaria.tamiyo_error)', async () => {
    const { control, raised } = calls(kit.worker());
    const result = await control.controller(() => Promise.reject(new Error('bad policy')), 'tolaria.tamiyo.step-1', undefined);
    expect(result.ok).toBe(false);
    expect(control.conservative).toBe(true);
    expect(raised.map((e) => e.description)).toEqual([TolariaEvent.TAMIYO_ERROR, TolariaEvent.CONSERVATIVE_MODE_ENTERED]);
  });
});
