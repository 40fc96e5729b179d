/**
 * Nissa composed from settings (`createNissa`, the factory Weatherlight calls): the bus
 * consumer feeding, for every delivery,
 *
 * - the Prometheus metrics (`NissaMetrics`) and the alert rules' inputs;
 * - the alert engine (the eight rules of `nissa.*`), its notifiers (a log line and an
 *   `alert_fired`/`alert_resolved` packet to Nissa's telemetry; a webhook when
 *   `nissa.alertWebhookUrl` is set) and the live view's alerts;
 * - the SLO tracker (decision latency, command rejections, bus lag, and the
 *   `slo.<key>_objective/_actual` pairs);
 * - the event store (telemetry events and field reports, written in batches, pruned every
 *   `nissa.eventPruneIntervalMs`);
 * - the live view's board;
 *
 * and the HTTP server on `nissa.httpHost:nissa.httpPort` (`/metrics`, `/healthz`,
 * `/metrics/summary`, the live view). When that port is taken (another run's Nissa), a free
 * one is used and `movedPort` says so.
 */
import { closeOnce, describeError, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { BusMessageType, CommandAckStatus, type CommandAck, type FieldReport, type TelemetryPacket } from '../leyline/index.js';
import type { Bus, Delivery } from '../oona/index.js';
import { AlertEngine, type AlertEvent } from './alerts/index.js';
import { alertRules } from './alerts/rules.js';
import { alertInputsFromPacket } from './alerts/inputs.js';
import { LogNotifier } from './alerts/log-notifier.js';
import { registerAlertInputs } from './alerts/prometheus.js';
import { WebhookNotifier } from './alerts/webhook-notifier.js';
import type { AlertNotifier } from './alerts/event.js';
import { EventStore, eventStoreOptionsFromSettings } from './events/event-store.js';
import { startNissaHttp, type NissaHttp } from './http.js';
import { NissaMetrics } from './metrics.js';
import { NissaService } from './service.js';
import { slosFromSettings, SloTracker } from './slo.js';
import { RunBoard } from './view/board.js';
import { registerViewRoutes } from './view/routes.js';

/** Tamiyo's decision latency metrics, fed to the decision-latency SLO. */
const DECISION_LATENCY_METRICS = ['tamiyo.inference.latency_ms', 'tamiyo.gnn.inference.latency_ms'];

/** Event-store writes are batched: at most this many items or this long. */
const STORE_BATCH_ITEMS = 500;
const STORE_BATCH_MS = 250;

/** What {@link createNissa} is given; the bus is not closed by Nissa. */
export interface NissaDeps {
  readonly bus: Bus;
  /** Nissa's own telemetry (alert packets, its problems) — keep it off the bus Nissa reads. */
  readonly telemetry: TelemetrySink;
  /** Consumer name. @default `nissa-<pid>` */
  readonly consumer?: string;
  /** Also keep events in the event store at `nissa.eventStorePath`. @default true */
  readonly eventStore?: boolean;
  /** One line per alert fired or resolved, and per event-store problem. */
  readonly onLine?: (line: string) => void;
}

/** A running Nissa. */
export interface Nissa extends AsyncDisposable {
  readonly service: NissaService;
  readonly board: RunBoard;
  readonly alerts: AlertEngine;
  readonly slos: SloTracker;
  readonly events: EventStore | undefined;
  readonly http: NissaHttp;
  /** Where it serves (`http://host:port`). */
  readonly url: string;
  /** Whether the configured port was taken and another one is used. */
  readonly movedPort: boolean;
  /** Stops reading the bus, writes what the event store has pending, then stops the server. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts Nissa: opens the event store, subscribes to the bus, then listens.
 * @throws EsperError from the bus or the event store; the server's listen error other than a taken port
 */
export async function createNissa(settings: EsperSettings, deps: NissaDeps): Promise<Nissa> {
  const metrics = new NissaMetrics({ bsdsElevatedRiskThreshold: settings.nissa.bsdsElevatedRiskThreshold });
  const board = new RunBoard();
  const updateAlertInputs = registerAlertInputs(metrics.registry);
  const notifiers: AlertNotifier[] = [
    new LogNotifier({ sink: deps.telemetry, ...(deps.onLine === undefined ? {} : { log: deps.onLine }) }),
  ];
  const webhookUrl = settings.nissa.alertWebhookUrl;
  const webhook =
    webhookUrl === undefined || webhookUrl === ''
      ? undefined
      : new WebhookNotifier({
          url: webhookUrl,
          timeoutMs: settings.nissa.alertWebhookTimeoutMs,
          retries: settings.nissa.alertWebhookRetries,
          onFailure: (failure) =>
            deps.onLine?.(`alert webhook: ${failure.event.alert} ${failure.outcome} after ${failure.attempts} attempts: ${failure.error}`),
        });
  if (webhook !== undefined) notifiers.push(webhook);
  notifiers.push({ name: 'live-view', notify: (event) => board.alert(viewAlert(event)) });
  const alerts = new AlertEngine({ rules: alertRules(settings.nissa), notifiers });
  const slos = new SloTracker({ slos: slosFromSettings(settings), learnedTarget: settings.nissa.sloTarget });
  const events = deps.eventStore === false ? undefined : EventStore.open(eventStoreOptionsFromSettings(settings.nissa));

  const pending: { telemetry: TelemetryPacket[]; reports: FieldReport[] } = { telemetry: [], reports: [] };
  const flush = (): void => {
    if (events === undefined || (pending.telemetry.length === 0 && pending.reports.length === 0)) return;
    const telemetry = pending.telemetry.splice(0);
    const reports = pending.reports.splice(0);
    try {
      if (telemetry.length > 0) events.ingestTelemetry(telemetry);
      if (reports.length > 0) events.ingestFieldReports(reports);
    } catch (error) {
      deps.onLine?.(`event store: ${telemetry.length + reports.length} items not stored: ${describeError(error)}`);
    }
  };
  const flushTimer = setInterval(flush, STORE_BATCH_MS);
  flushTimer.unref();
  const pruneTimer = setInterval(() => {
    try {
      events?.prune();
    } catch (error) {
      deps.onLine?.(`event store: prune failed: ${describeError(error)}`);
    }
  }, settings.nissa.eventPruneIntervalMs);
  pruneTimer.unref();

  const service = new NissaService({
    bus: deps.bus,
    metrics,
    telemetry: deps.telemetry,
    ...(deps.consumer === undefined ? {} : { consumer: deps.consumer }),
  });
  service.addListener((delivery: Delivery) => {
    const now = Date.now();
    board.ingest(delivery.type, delivery.message, now);
    slos.recordBusLag(Math.max(0, now - delivery.publishedAtMs), now);
    if (delivery.type === BusMessageType.TELEMETRY) {
      const packet = delivery.message as TelemetryPacket;
      const inputs = alertInputsFromPacket(packet, { bsdsElevatedRiskThreshold: settings.nissa.bsdsElevatedRiskThreshold });
      updateAlertInputs(inputs, packet.sourceSubsystem);
      alerts.evaluate(inputs, packet.sourceSubsystem);
      slos.recordFromMetrics(inputs, now);
      for (const name of DECISION_LATENCY_METRICS) {
        const latency = inputs.get(name);
        if (latency !== undefined) slos.recordDecisionLatency(latency, now);
      }
      if (events !== undefined && packet.events.length > 0) pending.telemetry.push(packet);
    } else if (delivery.type === BusMessageType.FIELD_REPORT) {
      if (events !== undefined) pending.reports.push(delivery.message as FieldReport);
    } else if (delivery.type === BusMessageType.COMMAND_ACK) {
      const ack = delivery.message as CommandAck;
      if (ack.status !== CommandAckStatus.RUN_ENDED) slos.recordCommandOutcome(ack.status !== CommandAckStatus.REJECTED, now);
    }
    if (pending.telemetry.length + pending.reports.length >= STORE_BATCH_ITEMS) flush();
  });

  const stopTimers = (): void => {
    clearInterval(flushTimer);
    clearInterval(pruneTimer);
  };
  try {
    await service.start();
    const start = (port: number) =>
      startNissaHttp({
        host: settings.nissa.httpHost,
        port,
        metrics,
        health: () => ({ ingested: service.stats().ingested, dropped: service.stats().dropped }),
        summary: () => ({ slo: slos.summary(), alerts: alerts.summary() }),
        routes: (app) => {
          registerViewRoutes(app, board);
        },
      });
    let movedPort = false;
    let http: NissaHttp;
    try {
      http = await start(settings.nissa.httpPort);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      http = await start(0);
      movedPort = true;
    }
    const opened = http;
    const close = closeOnce(() =>
      runCleanup('nissa', [
        () => service.close(),
        () => {
          stopTimers();
          flush();
          events?.close();
        },
        webhook !== undefined && (() => webhook.close()),
        () => opened.close(),
      ]),
    );
    return { service, board, alerts, slos, events, http, url: http.url, movedPort, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    stopTimers();
    await runCleanup('nissa', [() => service.close(), () => events?.close(), webhook !== undefined && (() => webhook.close())]).catch(
      () => undefined,
    );
    throw error;
  }
}

/** An alert event as the live view shows it. */
function viewAlert(event: AlertEvent): Parameters<RunBoard['alert']>[0] {
  return {
    name: event.alert,
    severity: event.severity,
    message: event.summary,
    firedAtMs: event.firedAtMs ?? event.atMs,
    ...(event.kind === 'resolved' ? { resolvedAtMs: event.atMs } : {}),
  };
}
