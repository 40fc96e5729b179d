/**
 * The supervisor on real child processes (tiny scripts run with `process.execPath`) and
 * in-process workers: backoff sequence, mode, metric names, restart budget, completion,
 * drain and SIGKILL at shutdown. Backoff timers are fired by hand (ManualTimers) where the
 * exact sequence matters, or run on tiny real bases; nothing sleeps to wait.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, MemoryTelemetrySink } from '../../src/core/index.js';
import { HealthStatus, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { Supervisor, supervisorFailure, type ServiceSpec } from '../../src/weatherlight/index.js';
import { thrownBy } from '../support/thrown.js';
import { eventsIn, ManualTimers, metric, OutputCollector, until, writeScripts } from './supervisor-support.js';

/** Telemetry interval used with ManualTimers: far above any backoff, so the two are told apart. */
const TELEMETRY_MS = 1_000_000;

let dir: string;
let scripts: Awaited<ReturnType<typeof writeScripts>>;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esper-supervisor-'));
  scripts = await writeScripts(dir);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function processService(name: string, script: string, ...args: string[]): ServiceSpec {
  return { kind: 'process', name, args: [script, ...args] };
}

describe('Supervisor: a child that crashes twice, then runs', () => {
  it('is restarted after 2·base then 4·base (+ jitter), degraded while backing off, operational once it runs; metrics as the prototype names them', async () => {
    const sink = new MemoryTelemetrySink();
    const timers = new ManualTimers();
    const output = new OutputCollector();
    const supervisor = new Supervisor({
      services: [processService('flaky', scripts.crashThenRun, path.join(dir, 'flaky.count'), '2')],
      telemetry: sink,
      timers,
      output,
      random: () => 0.5,
      backoff: { baseMs: 10, maxMs: 1_000, jitterRatio: 0.25 },
      telemetryIntervalMs: TELEMETRY_MS,
    });
    supervisor.start();

    const first = await until(() => timers.pending(TELEMETRY_MS)[0], 'the first backoff');
    expect(first.delayMs).toBe(20 * 1.125); // base 10 doubled once, plus 0.5 of 25 % jitter
    expect(supervisor.mode).toBe('degraded');
    let snapshot = supervisor.snapshot().services[0];
    expect(snapshot).toMatchObject({
      status: 'backing_off',
      restarts: 1,
      exitCode: 3,
      signal: null,
      lastError: 'exited with code 3: boom 1',
    });

    const crash = eventsIn(sink.packets, 'worker_error')[0];
    expect(crash?.event.level).toBe(TelemetryLevel.WARNING);
    expect(crash?.packet.priority).toBe(MessagePriority.NORMAL); // spec 01 table: a plain WARNING
    expect(crash?.event.attributes).toMatchObject({
      worker: 'flaky',
      error: 'exited with code 3: boom 1',
      exit_code: '3',
      restarts: '1',
      backoff_ms: '23',
    });
    expect(eventsIn(sink.packets, 'mode_changed').map((e) => e.event.attributes['to'])).toEqual(['degraded']);

    // The periodic packet while backing off.
    supervisor.emitTelemetry();
    const degraded = sink.packets.at(-1)!;
    expect(degraded.sourceSubsystem).toBe('weatherlight');
    expect(degraded.priority).toBe(MessagePriority.NORMAL);
    expect(metric(degraded, 'weatherlight.tasks.running')).toBe(0);
    expect(metric(degraded, 'weatherlight.tasks.backing_off')).toBe(1);
    expect(metric(degraded, 'weatherlight.restarts_total')).toBe(1);
    expect(metric(degraded, 'weatherlight.last_error_ts')).toBeGreaterThan(1.7e9);
    expect(metric(degraded, 'weatherlight.uptime_s')).toBeGreaterThanOrEqual(0);
    expect(metric(degraded, 'weatherlight.worker.flaky.running')).toBe(0);
    expect(metric(degraded, 'weatherlight.worker.flaky.restarts')).toBe(1);
    expect(metric(degraded, 'weatherlight.worker.flaky.backoff_seconds')).toBeCloseTo(0.0225, 10);
    expect(degraded.systemHealth?.status).toBe(HealthStatus.DEGRADED);
    expect(degraded.systemHealth?.indicators).toMatchObject({ system_mode: 'degraded', workers_running: '0', workers_backing_off: '1' });

    first.fire();
    const second = await until(() => timers.pending(TELEMETRY_MS)[0], 'the second backoff');
    expect(second.delayMs).toBe(40 * 1.125);
    first.fire(); // firing a spent timer again does nothing
    second.fire();
    await until(() => output.lines.includes('[flaky] ready'), 'the third run to be up');

    expect(supervisor.mode).toBe('operational');
    snapshot = supervisor.snapshot().services[0];
    expect(snapshot).toMatchObject({ status: 'running', restarts: 2 });
    expect(eventsIn(sink.packets, 'worker_restarted').map((e) => e.event.attributes['restarts'])).toEqual(['1', '2']);
    expect(eventsIn(sink.packets, 'mode_changed').map((e) => e.event.attributes['to'])).toEqual([
      'degraded',
      'operational',
      'degraded',
      'operational',
    ]);
    expect(output.lines.filter((l) => l.startsWith('[flaky] boom'))).toEqual(['[flaky] boom 1', '[flaky] boom 2']);

    // The periodic loop: firing the telemetry timer emits a packet and schedules the next.
    const tick = timers.pending().find((t) => t.delayMs === TELEMETRY_MS)!;
    const before = sink.packets.length;
    tick.fire();
    const running = sink.packets[before]!;
    expect(running.metrics.map((m) => m.name)).toEqual([
      'weatherlight.tasks.running',
      'weatherlight.tasks.backing_off',
      'weatherlight.uptime_s',
      'weatherlight.restarts_total',
      'weatherlight.last_error_ts',
      'weatherlight.worker.flaky.running',
      'weatherlight.worker.flaky.restarts',
    ]);
    expect(metric(running, 'weatherlight.tasks.running')).toBe(1);
    expect(metric(running, 'weatherlight.restarts_total')).toBe(2);
    expect(running.systemHealth?.indicators['system_mode']).toBe('operational');
    expect(timers.pending().filter((t) => t.delayMs === TELEMETRY_MS)).toHaveLength(1);

    const result = await supervisor.shutdown();
    expect(result.reason).toBe('shutdown');
    expect(result.services[0]).toMatchObject({ name: 'flaky', status: 'stopped', exitCode: 0, restarts: 2 });
    expect(supervisorFailure(result)).toBeUndefined();
  });
});

describe('Supervisor: a child SIGKILLed from outside', () => {
  it('is restarted (worker_error names the signal), degraded then operational again', async () => {
    const sink = new MemoryTelemetrySink();
    const output = new OutputCollector();
    const supervisor = new Supervisor({
      services: [processService('tamiyo', scripts.cooperative)],
      telemetry: sink,
      output,
      backoff: { baseMs: 5, maxMs: 50 },
    });
    supervisor.start();
    await until(() => output.lines.filter((l) => l === '[tamiyo] ready').length === 1, 'the first run');
    const firstPid = supervisor.snapshot().services[0]?.pid as number;
    process.kill(firstPid, 'SIGKILL');
    await until(() => output.lines.filter((l) => l === '[tamiyo] ready').length === 2, 'the restarted run');

    const crash = eventsIn(sink.packets, 'worker_error')[0]?.event;
    expect(crash?.attributes).toMatchObject({ worker: 'tamiyo', signal: 'SIGKILL', error: 'killed by signal SIGKILL' });
    expect(eventsIn(sink.packets, 'mode_changed').map((e) => e.event.attributes['to'])).toEqual(['degraded', 'operational']);
    const now = supervisor.snapshot().services[0];
    expect(now).toMatchObject({ status: 'running', restarts: 1 });
    expect(now?.pid).not.toBe(firstPid);
    expect((await supervisor.shutdown()).services[0]).toMatchObject({ status: 'stopped', exitCode: 0 });
  });
});

describe('Supervisor: restart budget', () => {
  it('stops a child that always crashes after its budget: CRITICAL event naming it and its last error, run() resolves, the failure says so', async () => {
    const sink = new MemoryTelemetrySink();
    const supervisor = new Supervisor({
      services: [processService('doomed', scripts.alwaysCrash), processService('steady', scripts.cooperative)],
      telemetry: sink,
      output: new OutputCollector(),
      backoff: { baseMs: 1, maxMs: 8 },
      restartBudget: { maxRestarts: 2, windowMs: 60_000 },
      drainDeadlineMs: 5_000,
    });

    const result = await supervisor.run();

    expect(result.reason).toBe('budget_exhausted');
    expect(result.exhausted.map((s) => s.name)).toEqual(['doomed']);
    const doomed = result.services.find((s) => s.name === 'doomed');
    expect(doomed).toMatchObject({
      status: 'exhausted',
      restarts: 2,
      exitCode: 1,
      lastError: 'exited with code 1: fatal: cannot reach the bus',
    });
    // Nothing is left running: the healthy service was drained.
    expect(result.services.find((s) => s.name === 'steady')?.status).toBe('stopped');
    expect(result.mode).toBe('degraded');

    const exhausted = eventsIn(sink.packets, 'worker_budget_exhausted');
    expect(exhausted).toHaveLength(1);
    expect(exhausted[0]?.event.level).toBe(TelemetryLevel.CRITICAL);
    expect(exhausted[0]?.packet.priority).toBe(MessagePriority.CRITICAL);
    expect(exhausted[0]?.event.attributes).toMatchObject({
      worker: 'doomed',
      last_error: 'exited with code 1: fatal: cannot reach the bus',
      restarts: '2',
      max_restarts: '2',
    });
    expect(eventsIn(sink.packets, 'worker_error')).toHaveLength(3);
    expect(eventsIn(sink.packets, 'worker_restarted')).toHaveLength(2);

    const failure = supervisorFailure(result);
    expect(failure?.code).toBe(ErrorCode.WEATHERLIGHT_SERVICE_BUDGET_EXHAUSTED);
    expect(failure?.message).toBe(
      'service doomed kept crashing and was stopped after 2 restarts; last error: exited with code 1: fatal: cannot reach the bus',
    );

    // The last packet (the flush at shutdown) still shows the exhausted service.
    const last = sink.packets.at(-1)!;
    expect(last.systemHealth?.summary).toBe('budget_exhausted');
    expect(metric(last, 'weatherlight.worker.doomed.running')).toBe(0);
    expect(metric(last, 'weatherlight.worker.doomed.restarts')).toBe(2);
  });

  it('with a budget of 0 never restarts', async () => {
    const supervisor = new Supervisor({
      services: [processService('once', scripts.alwaysCrash)],
      telemetry: new MemoryTelemetrySink(),
      output: new OutputCollector(),
      restartBudget: { maxRestarts: 0 },
    });
    const result = await supervisor.run();
    expect(result.services[0]).toMatchObject({ status: 'exhausted', restarts: 0 });
  });
});

describe('Supervisor: shutdown', () => {
  it('drains a cooperative child on SIGTERM and SIGKILLs a stubborn one at the deadline', async () => {
    const output = new OutputCollector();
    const sink = new MemoryTelemetrySink();
    const supervisor = new Supervisor({
      services: [processService('coop', scripts.cooperative), processService('mule', scripts.stubborn)],
      telemetry: sink,
      output,
      drainDeadlineMs: 300,
    });
    supervisor.start();
    await until(() => output.lines.includes('[coop] ready') && output.lines.includes('[mule] ready'), 'both children up');
    const pids = supervisor.snapshot().services.map((s) => s.pid as number);

    const started = Date.now();
    const result = await supervisor.shutdown();
    const tookMs = Date.now() - started;

    expect(result.services).toMatchObject([
      { name: 'coop', status: 'stopped', exitCode: 0 },
      { name: 'mule', status: 'killed', signal: 'SIGKILL' },
    ]);
    expect(output.lines).toContain('[coop] draining');
    expect(output.lines).toContain('[mule] ignoring SIGTERM');
    expect(tookMs).toBeGreaterThanOrEqual(290);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    // No restart happened at shutdown, and the telemetry was flushed.
    expect(eventsIn(sink.packets, 'worker_error')).toHaveLength(0);
    expect(metric(sink.packets.at(-1)!, 'weatherlight.tasks.running')).toBe(0);
    expect(supervisor.state).toBe('stopped');
    // Idempotent: the first call's result.
    expect(await supervisor.shutdown()).toBe(result);
  });

  it('resolves run() on its signal, cancelling a pending backoff', async () => {
    const timers = new ManualTimers();
    const controller = new AbortController();
    const supervisor = new Supervisor({
      services: [processService('doomed', scripts.alwaysCrash)],
      telemetry: new MemoryTelemetrySink(),
      output: new OutputCollector(),
      timers,
      telemetryIntervalMs: TELEMETRY_MS,
    });
    const running = supervisor.run(controller.signal);
    const backoff = await until(() => timers.pending(TELEMETRY_MS)[0], 'a backoff');
    controller.abort();
    const result = await running;
    expect(result.reason).toBe('signal');
    expect(result.services[0]).toMatchObject({ status: 'stopped', restarts: 1 });
    expect(backoff.done).toBe(true);
  });
});

describe('Supervisor: a child that exits 0 on its own', () => {
  it('is completed, not restarted, and the supervisor settles as completed', async () => {
    const sink = new MemoryTelemetrySink();
    const supervisor = new Supervisor({
      services: [processService('job', scripts.oneShot)],
      telemetry: sink,
      output: new OutputCollector(),
    });
    const result = await supervisor.run();
    expect(result.reason).toBe('completed');
    expect(result.services[0]).toMatchObject({ status: 'completed', restarts: 0, exitCode: 0 });
    expect(result.mode).toBe('operational');
    expect(eventsIn(sink.packets, 'worker_completed')).toHaveLength(1);
    expect(eventsIn(sink.packets, 'worker_restarted')).toHaveLength(0);
  });
});

describe('Supervisor: in-process workers', () => {
  it('restarts a failing worker with the same backoff; a healthy run resets it; shutdown aborts its signal', async () => {
    const sink = new MemoryTelemetrySink();
    const timers = new ManualTimers();
    const clock = new FakeClock();
    let attempts = 0;
    let releaseThird: (() => void) | undefined;
    const supervisor = new Supervisor({
      services: [
        {
          kind: 'worker',
          name: 'tamiyo.policy',
          run: async (signal) => {
            attempts += 1;
            if (attempts <= 2) throw new Error(`policy stream lost (${attempts})`);
            if (attempts === 3) {
              await new Promise<void>((resolve) => (releaseThird = resolve));
              throw new Error('crashed after a healthy run');
            }
            await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
          },
        },
      ],
      telemetry: sink,
      timers,
      clock,
      random: () => 0,
      backoff: { baseMs: 10, maxMs: 1_000 },
      healthyAfterMs: 60_000,
      telemetryIntervalMs: TELEMETRY_MS,
    });
    supervisor.start();

    const delays: number[] = [];
    for (let i = 0; i < 2; i += 1) {
      const timer = await until(() => timers.pending(TELEMETRY_MS)[0], `backoff ${i + 1}`);
      delays.push(timer.delayMs);
      expect(supervisor.mode).toBe('degraded');
      timer.fire();
    }
    await until(() => releaseThird, 'the third run');
    expect(supervisor.mode).toBe('operational');
    clock.advance(60_000); // the third run lasts the healthy period before it crashes
    releaseThird!();
    const afterHealthy = await until(() => timers.pending(TELEMETRY_MS)[0], 'backoff after the healthy run');
    delays.push(afterHealthy.delayMs);
    afterHealthy.fire();
    await until(() => attempts === 4 && supervisor.snapshot().services[0]?.status === 'running', 'the fourth run');

    expect(delays).toEqual([20, 40, 20]);
    expect(eventsIn(sink.packets, 'worker_error').map((e) => e.event.attributes['error'])).toEqual([
      'policy stream lost (1)',
      'policy stream lost (2)',
      'crashed after a healthy run',
    ]);
    expect(eventsIn(sink.packets, 'worker_error').map((e) => e.event.attributes['consecutive_failures'])).toEqual(['1', '2', '1']);
    supervisor.emitTelemetry();
    expect(metric(sink.packets.at(-1)!, 'weatherlight.worker.tamiyo.policy.restarts')).toBe(3);

    const result = await supervisor.shutdown();
    expect(result.services[0]).toMatchObject({ kind: 'worker', status: 'stopped', restarts: 3 });
  });

  it('reports a worker that ignores its abort past the deadline as abandoned', async () => {
    const supervisor = new Supervisor({
      services: [{ kind: 'worker', name: 'deaf', run: () => new Promise<void>(() => {}) }],
      telemetry: new MemoryTelemetrySink(),
      drainDeadlineMs: 20,
    });
    supervisor.start();
    const result = await supervisor.shutdown();
    expect(result.services[0]?.status).toBe('abandoned');
  });
});

describe('Supervisor: options and state', () => {
  it('refuses duplicate or malformed service names and bad policies, naming the field', () => {
    const telemetry = new MemoryTelemetrySink();
    const worker = (name: string): ServiceSpec => ({ kind: 'worker', name, run: () => Promise.resolve() });
    expect(thrownBy(() => new Supervisor({ services: [worker('a'), worker('a')], telemetry }), ErrorCode.INVALID_ARGUMENT).message).toMatch(
      /services\[1\]\.name must be a name no other service has/,
    );
    expect(thrownBy(() => new Supervisor({ services: [worker('a b')], telemetry })).message).toMatch(/services\[0\]\.name/);
    expect(thrownBy(() => new Supervisor({ services: [], telemetry, backoff: { baseMs: 10, maxMs: 5 } })).message).toMatch(
      /backoff\.maxMs/,
    );
    expect(thrownBy(() => new Supervisor({ services: [], telemetry, restartBudget: { maxRestarts: -1 } })).message).toMatch(/maxRestarts/);
  });

  it('run() with a signal already aborted starts nothing', async () => {
    let ran = false;
    const supervisor = new Supervisor({
      services: [{ kind: 'worker', name: 'w', run: () => Promise.resolve(void (ran = true)) }],
      telemetry: new MemoryTelemetrySink(),
    });
    const result = await supervisor.run(AbortSignal.abort());
    expect(result).toMatchObject({ reason: 'signal', services: [{ status: 'stopped' }] });
    expect(ran).toBe(false);
  });

  it('starts once; shutdown before start stops nothing and resolves', async () => {
    const supervisor = new Supervisor({
      services: [{ kind: 'worker', name: 'w', run: () => Promise.resolve() }],
      telemetry: new MemoryTelemetrySink(),
    });
    const result = await supervisor.shutdown();
    expect(result.services[0]?.status).toBe('stopped');
    expect(thrownBy(() => supervisor.start(), ErrorCode.INVALID_STATE).message).toBe('weatherlight supervisor is stopped; cannot start');
  });

  it('reports a command that cannot start as a crash of that service', async () => {
    const supervisor = new Supervisor({
      services: [{ kind: 'process', name: 'ghost', command: path.join(dir, 'no-such-binary'), args: [] }],
      telemetry: new MemoryTelemetrySink(),
      restartBudget: { maxRestarts: 0 },
    });
    const result = await supervisor.run();
    expect(result.services[0]?.lastError).toMatch(/^could not start .*no-such-binary: spawn .* ENOENT$/);
  });
});
