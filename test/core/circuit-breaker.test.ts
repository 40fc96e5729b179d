import { describe, expect, it } from 'vitest';
import {
  BreakerTransitionReason,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerStateChange,
} from '../../src/core/circuit-breaker.js';
import { FakeClock } from '../../src/core/clock.js';
import { ErrorCode, EsperError, isEsperError } from '../../src/core/errors.js';
import { CircuitBreakerState } from '../../src/leyline/index.js';

const { CIRCUIT_STATE_CLOSED: CLOSED, CIRCUIT_STATE_OPEN: OPEN, CIRCUIT_STATE_HALF_OPEN: HALF_OPEN } = CircuitBreakerState;

/** A breaker on a fake clock that records every transition as `from→to:reason`. */
function makeBreaker(options: Partial<CircuitBreakerOptions> = {}) {
  const clock = new FakeClock({ monotonicMs: 1_000 });
  const changes: CircuitBreakerStateChange[] = [];
  const breaker = new CircuitBreaker({
    name: 'test.breaker',
    openTimeoutMs: 1_000,
    clock,
    onStateChange: (change) => changes.push(change),
    ...options,
  });
  const transitions = () => changes.map((c) => `${CircuitBreakerState[c.from]}→${CircuitBreakerState[c.to]}:${c.reason}`);
  return { breaker, clock, changes, transitions };
}

/** Drives a closed breaker open with `failureThreshold` failures. */
function tripOpen(breaker: CircuitBreaker, reason = 'boom'): void {
  for (let i = 0; i < breaker.options.failureThreshold; i += 1) {
    expect(breaker.allow()).toBe(true);
    breaker.recordFailure(reason);
  }
  expect(breaker.state).toBe(OPEN);
}

describe('CircuitBreaker options', () => {
  it('uses the documented defaults', () => {
    const breaker = new CircuitBreaker({ name: 'defaults' });
    expect(breaker.options).toMatchObject({
      name: 'defaults',
      failureThreshold: 3,
      successThreshold: 1,
      openTimeoutMs: 30_000,
      halfOpenMaxProbes: 1,
    });
    expect(new CircuitBreaker({ name: 'probes', successThreshold: 3 }).options.halfOpenMaxProbes).toBe(3);
  });

  it.each([
    ['name', { name: '' }],
    ['failureThreshold', { failureThreshold: 0 }],
    ['failureThreshold', { failureThreshold: 1.5 }],
    ['successThreshold', { successThreshold: 0 }],
    ['halfOpenMaxProbes', { halfOpenMaxProbes: 0 }],
    ['openTimeoutMs', { openTimeoutMs: -1 }],
    ['openTimeoutMs', { openTimeoutMs: Number.NaN }],
    ['openTimeoutMs', { openTimeoutMs: Number.POSITIVE_INFINITY }],
  ] as const)('rejects an invalid %s instead of clamping it', (field, bad) => {
    let thrown: unknown;
    try {
      new CircuitBreaker({ name: 'x', ...bad });
    } catch (error) {
      thrown = error;
    }
    expect(isEsperError(thrown, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((thrown as EsperError).details['field']).toBe(field);
    expect((thrown as EsperError).message).toContain(field);
  });
});

describe('CircuitBreaker transitions', () => {
  it('starts closed and admits every call', () => {
    const { breaker } = makeBreaker();
    expect(breaker.state).toBe(CLOSED);
    for (let i = 0; i < 10; i += 1) expect(breaker.allow()).toBe(true);
    expect(breaker.snapshot()).toEqual({
      name: 'test.breaker',
      state: CLOSED,
      failureCount: 0,
      successCount: 0,
      probesInFlight: 0,
      openedTotal: 0,
      rejectedTotal: 0,
    });
  });

  it('opens after failureThreshold consecutive failures', () => {
    const { breaker, transitions, changes } = makeBreaker({ failureThreshold: 3 });
    breaker.recordFailure('one');
    breaker.recordFailure('two');
    expect(breaker.state).toBe(CLOSED);
    breaker.recordFailure('three');
    expect(breaker.state).toBe(OPEN);
    expect(transitions()).toEqual(['CIRCUIT_STATE_CLOSED→CIRCUIT_STATE_OPEN:failure_threshold']);
    expect(changes[0]?.snapshot).toMatchObject({
      name: 'test.breaker',
      state: OPEN,
      failureCount: 3,
      openUntilMs: 2_000,
      openedTotal: 1,
      lastFailureReason: 'three',
    });
  });

  it('counts only consecutive failures: a success in CLOSED clears the count', () => {
    const { breaker } = makeBreaker({ failureThreshold: 3 });
    breaker.recordFailure();
    breaker.recordFailure();
    breaker.recordSuccess();
    expect(breaker.snapshot().failureCount).toBe(0);
    breaker.recordFailure();
    breaker.recordFailure();
    expect(breaker.state).toBe(CLOSED);
  });

  it('refuses calls until the open window ends and half-opens exactly at openUntilMs', () => {
    const { breaker, clock, transitions } = makeBreaker({ openTimeoutMs: 1_000 });
    tripOpen(breaker);
    expect(breaker.snapshot().openUntilMs).toBe(2_000);

    clock.advance(999);
    expect(breaker.allow()).toBe(false);
    expect(breaker.state).toBe(OPEN);
    expect(breaker.snapshot().rejectedTotal).toBe(1);

    clock.advance(1); // now === openUntilMs
    expect(breaker.allow()).toBe(true);
    expect(breaker.state).toBe(HALF_OPEN);
    expect(breaker.snapshot()).toMatchObject({ failureCount: 0, successCount: 0, probesInFlight: 1 });
    expect(breaker.snapshot().openUntilMs).toBeUndefined();
    expect(transitions()).toEqual([
      'CIRCUIT_STATE_CLOSED→CIRCUIT_STATE_OPEN:failure_threshold',
      'CIRCUIT_STATE_OPEN→CIRCUIT_STATE_HALF_OPEN:open_timeout_elapsed',
    ]);
  });

  it('re-opens on a single half-open failure, whatever failureThreshold is', () => {
    // Departs from the prototype quirk (prototype-tolaria-oona-nissa-weatherlight §1.2),
    // where a half-open breaker needed failureThreshold fresh failures to re-open.
    const { breaker, clock, transitions } = makeBreaker({ failureThreshold: 5, openTimeoutMs: 1_000 });
    tripOpen(breaker);
    clock.advance(1_000);
    expect(breaker.allow()).toBe(true);
    clock.advance(10);
    breaker.recordFailure('probe timed out');

    expect(breaker.state).toBe(OPEN);
    expect(breaker.snapshot()).toMatchObject({
      openUntilMs: 1_000 + 1_000 + 10 + 1_000,
      openedTotal: 2,
      probesInFlight: 0,
      lastFailureReason: 'probe timed out',
    });
    expect(transitions().at(-1)).toBe('CIRCUIT_STATE_HALF_OPEN→CIRCUIT_STATE_OPEN:probe_failed');
    clock.advance(999);
    expect(breaker.allow()).toBe(false);
  });

  it('closes after successThreshold probe successes and clears its counters', () => {
    const { breaker, clock, transitions } = makeBreaker({ successThreshold: 2 });
    tripOpen(breaker);
    clock.advance(1_000);
    expect(breaker.allow()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.state).toBe(HALF_OPEN);
    expect(breaker.snapshot().successCount).toBe(1);
    expect(breaker.allow()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.state).toBe(CLOSED);
    expect(breaker.snapshot()).toMatchObject({ failureCount: 0, successCount: 0, probesInFlight: 0 });
    expect(transitions().at(-1)).toBe('CIRCUIT_STATE_HALF_OPEN→CIRCUIT_STATE_CLOSED:success_threshold');
    // Closed again: it takes a full threshold of failures to re-open.
    breaker.recordFailure();
    expect(breaker.state).toBe(CLOSED);
  });

  it('admits at most halfOpenMaxProbes probes at a time', () => {
    const { breaker, clock } = makeBreaker({ successThreshold: 2 });
    tripOpen(breaker);
    clock.advance(1_000);
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false);
    expect(breaker.snapshot()).toMatchObject({ state: HALF_OPEN, probesInFlight: 2, rejectedTotal: 1 });
    breaker.recordSuccess();
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false);
  });

  it('frees a probe slot on a neutral outcome without counting it', () => {
    const { breaker, clock } = makeBreaker();
    tripOpen(breaker);
    clock.advance(1_000);
    expect(breaker.allow()).toBe(true);
    expect(breaker.allow()).toBe(false);
    breaker.recordNeutral();
    expect(breaker.snapshot()).toMatchObject({ state: HALF_OPEN, successCount: 0, probesInFlight: 0 });
    expect(breaker.allow()).toBe(true);
  });

  it('frees probe slots whose outcome is never recorded after one open window', () => {
    const { breaker, clock } = makeBreaker({ openTimeoutMs: 1_000 });
    tripOpen(breaker);
    clock.advance(1_000);
    expect(breaker.allow()).toBe(true); // this probe's caller never reports back
    clock.advance(999);
    expect(breaker.allow()).toBe(false);
    clock.advance(1);
    expect(breaker.allow()).toBe(true);
    expect(breaker.snapshot().probesInFlight).toBe(1);
  });

  it('ignores late successes while open and does not extend the window on late failures', () => {
    const { breaker, clock } = makeBreaker({ openTimeoutMs: 1_000 });
    tripOpen(breaker);
    clock.advance(500);
    breaker.recordSuccess();
    breaker.recordFailure('late');
    expect(breaker.snapshot()).toMatchObject({ state: OPEN, openUntilMs: 2_000, openedTotal: 1 });
    clock.advance(500);
    expect(breaker.allow()).toBe(true);
  });

  it('half-opens on the next call when openTimeoutMs is 0', () => {
    const { breaker } = makeBreaker({ openTimeoutMs: 0, failureThreshold: 1 });
    breaker.recordFailure();
    expect(breaker.state).toBe(OPEN);
    expect(breaker.allow()).toBe(true);
    expect(breaker.state).toBe(HALF_OPEN);
  });

  it('forceOpen opens for a fresh window; reset closes and keeps lifetime totals', () => {
    const { breaker, clock, transitions } = makeBreaker({ openTimeoutMs: 1_000 });
    breaker.forceOpen('operator drill');
    expect(breaker.snapshot()).toMatchObject({
      state: OPEN,
      openUntilMs: 2_000,
      openedTotal: 1,
      lastFailureReason: 'operator drill',
    });
    clock.advance(600);
    breaker.forceOpen('again');
    expect(breaker.snapshot()).toMatchObject({ state: OPEN, openUntilMs: 2_600, openedTotal: 1 });
    expect(breaker.allow()).toBe(false);

    breaker.reset();
    expect(breaker.state).toBe(CLOSED);
    expect(breaker.allow()).toBe(true);
    expect(breaker.snapshot()).toMatchObject({ failureCount: 0, openedTotal: 1, rejectedTotal: 1 });
    breaker.reset(); // already closed: no transition reported
    expect(transitions()).toEqual(['CIRCUIT_STATE_CLOSED→CIRCUIT_STATE_OPEN:forced_open', 'CIRCUIT_STATE_OPEN→CIRCUIT_STATE_CLOSED:reset']);
  });

  it('reports transitions with the contract enum and named reasons', () => {
    const { changes, breaker } = makeBreaker({ failureThreshold: 1 });
    breaker.recordFailure();
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({
      name: 'test.breaker',
      from: CircuitBreakerState.CIRCUIT_STATE_CLOSED,
      to: CircuitBreakerState.CIRCUIT_STATE_OPEN,
      reason: BreakerTransitionReason.FAILURE_THRESHOLD,
    });
  });
});

describe('CircuitBreaker.run', () => {
  it('returns the result of a successful call and clears the failure count', async () => {
    const { breaker } = makeBreaker();
    breaker.recordFailure();
    await expect(breaker.run(async () => 42)).resolves.toBe(42);
    await expect(breaker.run(() => 'sync')).resolves.toBe('sync');
    expect(breaker.snapshot().failureCount).toBe(0);
  });

  it('rethrows a failing call unchanged and counts it', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 2 });
    const failure = new Error('redis down');
    await expect(
      breaker.run(async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(breaker.snapshot()).toMatchObject({ failureCount: 1, lastFailureReason: 'Error: redis down' });
    await expect(
      breaker.run(() => {
        throw new EsperError(ErrorCode.WORKER_TIMEOUT, 'slow');
      }),
    ).rejects.toThrow('slow');
    expect(breaker.snapshot()).toMatchObject({ state: OPEN, lastFailureReason: ErrorCode.WORKER_TIMEOUT });
  });

  it('throws BREAKER_OPEN without calling the function while open', async () => {
    const { breaker, clock } = makeBreaker({ openTimeoutMs: 1_000 });
    tripOpen(breaker);
    clock.advance(250);
    let called = false;
    const error: unknown = await breaker
      .run(async () => {
        called = true;
      })
      .then(
        () => undefined,
        (caught: unknown) => caught,
      );
    expect(called).toBe(false);
    expect(isEsperError(error, ErrorCode.BREAKER_OPEN)).toBe(true);
    expect((error as EsperError).details).toEqual({
      breaker: 'test.breaker',
      state: 'CIRCUIT_STATE_OPEN',
      retryAfterMs: 750,
    });
    expect((error as EsperError).message).toBe('circuit breaker test.breaker is open');
    expect(breaker.snapshot().rejectedTotal).toBe(1);
  });

  it('lets one probe through when half-open and refuses the concurrent ones', async () => {
    const { breaker, clock } = makeBreaker();
    tripOpen(breaker);
    clock.advance(1_000);
    let release!: () => void;
    const probe = breaker.run(
      () =>
        new Promise<string>((resolve) => {
          release = () => resolve('probe ok');
        }),
    );
    const refused = await breaker.run(async () => 'second').catch((error: unknown) => error);
    expect(isEsperError(refused, ErrorCode.BREAKER_OPEN)).toBe(true);
    expect((refused as EsperError).details['state']).toBe('CIRCUIT_STATE_HALF_OPEN');
    release();
    await expect(probe).resolves.toBe('probe ok');
    expect(breaker.state).toBe(CLOSED);
  });

  it('re-opens when the half-open probe fails', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 4 });
    tripOpen(breaker);
    clock.advance(1_000);
    await expect(breaker.run(() => Promise.reject(new Error('still down')))).rejects.toThrow('still down');
    expect(breaker.snapshot()).toMatchObject({ state: OPEN, openedTotal: 2 });
  });

  it('passes errors that isFailure rejects through without counting them', async () => {
    class CallerError extends Error {}
    const { breaker, clock } = makeBreaker({
      failureThreshold: 1,
      isFailure: (error) => !(error instanceof CallerError),
    });
    await expect(
      breaker.run(() => {
        throw new CallerError('bad request');
      }),
    ).rejects.toBeInstanceOf(CallerError);
    expect(breaker.snapshot()).toMatchObject({ state: CLOSED, failureCount: 0 });

    breaker.forceOpen();
    clock.advance(1_000);
    await expect(
      breaker.run(() => {
        throw new CallerError('bad request');
      }),
    ).rejects.toBeInstanceOf(CallerError);
    // The probe ended without a verdict: still half-open, and its slot is free again.
    expect(breaker.snapshot()).toMatchObject({ state: HALF_OPEN, successCount: 0, probesInFlight: 0 });
    await expect(breaker.run(async () => 'ok')).resolves.toBe('ok');
    expect(breaker.state).toBe(CLOSED);
  });
});
