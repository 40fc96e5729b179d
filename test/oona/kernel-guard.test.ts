import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError } from '../../src/core/index.js';
import {
  BusMessageType,
  KernelArtifactReadySchema,
  KernelPrefetchRequestSchema,
  SystemStatePacketSchema,
} from '../../src/leyline/index.js';
import { KernelGuard, type KernelGuardInput } from '../../src/oona/kernel-guard.js';

const NOW = Date.UTC(2026, 2, 1);

function guard(cacheSize = 16): { guard: KernelGuard; clock: FakeClock } {
  const clock = new FakeClock({ wallMs: NOW });
  return { guard: new KernelGuard({ freshnessWindowMs: 60_000, cacheSize, clock }), clock };
}

function request(requestId: string, issuedAtMs: number | undefined, extra: Partial<KernelGuardInput> = {}): KernelGuardInput {
  return {
    type: BusMessageType.KERNEL_PREFETCH_REQUEST,
    message: create(KernelPrefetchRequestSchema, {
      requestId,
      blueprintId: 'bp',
      trainingRunId: 'run',
      ...(issuedAtMs === undefined ? {} : { issuedAt: timestampFromMs(issuedAtMs) }),
    }),
    messageId: `m-${requestId}`,
    attempt: 1,
    entryKey: `e-${requestId}`,
    ...extra,
  };
}

function ready(requestId: string, extra: Partial<KernelGuardInput> = {}): KernelGuardInput {
  return {
    type: BusMessageType.KERNEL_PREFETCH_READY,
    message: create(KernelArtifactReadySchema, { requestId, blueprintId: 'bp' }),
    messageId: `m-ready-${requestId}`,
    attempt: 1,
    entryKey: `e-ready-${requestId}`,
    ...extra,
  };
}

describe('KernelGuard', () => {
  it('accepts a fresh request once and rejects another entry with its request id as a replay', () => {
    const { guard: g } = guard();
    expect(g.check(request('r1', NOW - 1_000)).accepted).toBe(true);
    const replay = g.check(request('r1', NOW - 1_000, { entryKey: 'copy', messageId: 'm-r1' }));
    expect(replay).toMatchObject({ accepted: false, reason: 'kernel_replay' });
    expect(g.snapshot().replayRejected).toBe(1);
  });

  it('rejects a request older than the window, or without issued_at, as stale', () => {
    const { guard: g } = guard();
    expect(g.check(request('old', NOW - 60_001))).toMatchObject({ accepted: false, reason: 'kernel_stale' });
    expect(g.check(request('unset', undefined))).toMatchObject({ accepted: false, reason: 'kernel_stale' });
    expect(g.check(request('edge', NOW - 60_000)).accepted).toBe(true);
    expect(g.snapshot().staleRejected).toBe(2);
  });

  it('lets a retry (same message id, higher attempt) and a redelivery (same entry) through', () => {
    const { guard: g } = guard();
    const first = request('r1', NOW);
    expect(g.check(first).accepted).toBe(true);
    expect(g.check(first).accepted).toBe(true);
    expect(g.check({ ...first, attempt: 2, entryKey: 'retry-entry' }).accepted).toBe(true);
    // A copy of the first attempt after the retry was seen is a replay.
    expect(g.check({ ...first, entryKey: 'copy-of-first' })).toMatchObject({ accepted: false, reason: 'kernel_replay' });
  });

  it('rejects a replayed ready/error answer but accepts answers without a request id', () => {
    const { guard: g } = guard();
    expect(g.check(ready('r1')).accepted).toBe(true);
    expect(g.check(ready('r1', { entryKey: 'copy', messageId: 'other' }))).toMatchObject({
      accepted: false,
      reason: 'kernel_replay',
    });
    expect(g.check(ready('')).accepted).toBe(true);
    expect(g.check(ready('', { entryKey: 'again' })).accepted).toBe(true);
  });

  it('forgets the oldest ids beyond its cache size (FIFO)', () => {
    const { guard: g } = guard(2);
    for (const id of ['a', 'b', 'c']) expect(g.check(request(id, NOW)).accepted).toBe(true);
    expect(g.snapshot().requestIdsHeld).toBe(2);
    expect(g.check(request('a', NOW, { entryKey: 'copy' })).accepted).toBe(true);
    expect(g.check(request('c', NOW, { entryKey: 'copy' })).accepted).toBe(false);
  });

  it('drops request ids whose request has gone stale', () => {
    const { guard: g, clock } = guard();
    g.check(request('a', NOW));
    clock.advance(61_000);
    g.check(request('b', NOW + 61_000));
    expect(g.snapshot().requestIdsHeld).toBe(1);
  });

  it('passes other message types untouched', () => {
    const { guard: g } = guard();
    const input = {
      type: BusMessageType.SYSTEM_STATE,
      message: create(SystemStatePacketSchema, {}),
      messageId: 'm',
      attempt: 1,
      entryKey: 'e',
    };
    expect(g.check(input).accepted).toBe(true);
    expect(g.check(input).accepted).toBe(true);
  });

  it('rejects bad options naming the field', () => {
    for (const [field, options] of [
      ['freshnessWindowMs', { freshnessWindowMs: 0, cacheSize: 1 }],
      ['cacheSize', { freshnessWindowMs: 1, cacheSize: 0.5 }],
    ] as const) {
      let caught: unknown;
      try {
        new KernelGuard(options);
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((caught as { details: Record<string, unknown> }).details['field']).toBe(field);
    }
  });
});
