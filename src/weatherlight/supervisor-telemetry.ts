/**
 * The supervisor's telemetry (prototype-tolaria-oona-nissa-weatherlight §5.5): the periodic
 * packet with the prototype's metric names, and the packets that carry its events the
 * moment they happen. Every packet's priority is set here, once, by the core builder's
 * spec 01 table; whoever forwards it must not recompute it.
 */
import { randomUUID } from 'node:crypto';
import { buildTelemetryPacket, type Clock, type EventInput, type MetricInput } from '../core/index.js';
import { HealthStatus, TelemetryLevel, type TelemetryPacket } from '../leyline/index.js';
import { SupervisorMode, WEATHERLIGHT_SOURCE, WeatherlightMetric, workerMetric, WorkerMetricSuffix } from './names.js';

/**
 * Where a service is in its life. `pending`: not started yet; `running`; `backing_off`:
 * crashed, waiting to be started again; `completed`: ended on its own with success, not
 * restarted; `exhausted`: crashed past its restart budget, stays down; `stopping`: asked to
 * end by shutdown; `stopped`: ended when asked (or never started); `killed`: SIGKILLed at
 * the drain deadline; `abandoned`: an in-process worker still running past the deadline
 * (it cannot be killed), or a child that did not go even after SIGKILL.
 */
export type ServiceStatus =
  'pending' | 'running' | 'backing_off' | 'completed' | 'exhausted' | 'stopping' | 'stopped' | 'killed' | 'abandoned';

/** One service as telemetry sees it. */
export interface ServiceView {
  readonly name: string;
  readonly status: ServiceStatus;
  /** Restarts since the supervisor started. */
  readonly restarts: number;
  /** The backoff being waited out (jitter included), 0 unless `backing_off`. */
  readonly backoffMs: number;
}

/** The supervisor as telemetry sees it. */
export interface SupervisorView {
  readonly uptimeMs: number;
  readonly mode: SupervisorMode;
  readonly services: readonly ServiceView[];
  /** Wall time of the latest failure of any service. */
  readonly lastErrorAtWallMs: number | undefined;
}

/** `degraded` while any service backs off or has exhausted its budget, else `operational`. */
export function modeOf(services: readonly Pick<ServiceView, 'status'>[]): SupervisorMode {
  return services.some((s) => s.status === 'backing_off' || s.status === 'exhausted')
    ? SupervisorMode.DEGRADED
    : SupervisorMode.OPERATIONAL;
}

/** The health section every supervisor packet carries (indicator `system_mode` is the mode). */
function health(view: SupervisorView): { status: HealthStatus; summary: string; indicators: Record<string, string | number> } {
  const running = view.services.filter((s) => s.status === 'running').length;
  const backingOff = view.services.filter((s) => s.status === 'backing_off').length;
  const exhausted = view.services.some((s) => s.status === 'exhausted');
  const status = view.mode === SupervisorMode.DEGRADED ? HealthStatus.DEGRADED : HealthStatus.HEALTHY;
  const summary = exhausted ? 'budget_exhausted' : backingOff > 0 ? 'backoff' : 'steady';
  return { status, summary, indicators: { system_mode: view.mode, workers_running: running, workers_backing_off: backingOff } };
}

/** The metrics of the periodic packet, in the prototype's order. */
export function supervisorMetrics(view: SupervisorView): MetricInput[] {
  const metrics: MetricInput[] = [
    { name: WeatherlightMetric.TASKS_RUNNING, value: view.services.filter((s) => s.status === 'running').length, unit: 'count' },
    { name: WeatherlightMetric.TASKS_BACKING_OFF, value: view.services.filter((s) => s.backoffMs > 0).length, unit: 'count' },
    { name: WeatherlightMetric.UPTIME_S, value: view.uptimeMs / 1_000, unit: 'seconds' },
    { name: WeatherlightMetric.RESTARTS_TOTAL, value: view.services.reduce((sum, s) => sum + s.restarts, 0), unit: 'count' },
  ];
  if (view.lastErrorAtWallMs !== undefined) {
    metrics.push({ name: WeatherlightMetric.LAST_ERROR_TS, value: view.lastErrorAtWallMs / 1_000, unit: 'unix_s' });
  }
  for (const service of view.services) {
    metrics.push(
      { name: workerMetric(service.name, WorkerMetricSuffix.RUNNING), value: service.status === 'running' ? 1 : 0, unit: 'bool' },
      { name: workerMetric(service.name, WorkerMetricSuffix.RESTARTS), value: service.restarts, unit: 'count' },
    );
    if (service.backoffMs > 0) {
      metrics.push({
        name: workerMetric(service.name, WorkerMetricSuffix.BACKOFF_SECONDS),
        value: service.backoffMs / 1_000,
        unit: 'seconds',
      });
    }
  }
  return metrics;
}

/** The periodic packet: level INFO, the metrics above, the health with the mode. */
export function buildSupervisorPacket(view: SupervisorView, clock: Clock): TelemetryPacket {
  return buildTelemetryPacket({
    source: WEATHERLIGHT_SOURCE,
    packetId: `weatherlight-${randomUUID()}`,
    level: TelemetryLevel.INFO,
    metrics: supervisorMetrics(view),
    health: health(view),
    clock,
  });
}

/**
 * A packet of events that just happened (a crash and its consequence travel together),
 * with the same health section. Its level and priority follow from its events.
 */
export function buildSupervisorEventPacket(view: SupervisorView, events: readonly EventInput[], clock: Clock): TelemetryPacket {
  return buildTelemetryPacket({
    source: WEATHERLIGHT_SOURCE,
    packetId: `weatherlight-${randomUUID()}`,
    events,
    health: health(view),
    clock,
  });
}
