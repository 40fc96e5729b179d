/**
 * Nissa's ingest and `/metrics` over real HTTP on 127.0.0.1, fed through an in-process bus:
 * the prototype's metric names with the values the packets imply, the per-run series, and
 * what Nissa may sample out when it lags (never a CRITICAL packet, never a field report).
 */
import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTelemetryPacket, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  AdaptationCommandSchema,
  BusMessageType,
  CommandAckSchema,
  CommandAckStatus,
  FieldReportOutcome,
  FieldReportSchema,
  MessagePriority,
  RunAnnouncementSchema,
  RunPhase,
  SeedLifecycleStage,
  SeedStateSchema,
  SystemStatePacketSchema,
  TelemetryLevel,
  type BusMessage,
} from '../../src/leyline/index.js';
import { MemoryStreamStore, StreamBus, type Delivery } from '../../src/oona/index.js';
import { KeyRing } from '../../src/security/index.js';
import { NissaMetrics, NissaService, startNissaHttp, type NissaHttp } from '../../src/nissa/index.js';

const keyRing = new KeyRing([{ keyId: 'k1', secret: Buffer.from('nissa-service-test-secret-0123456789', 'utf8') }]);

/** Polls until `condition` holds (the service works on the bus's schedule). */
async function until(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The value of one series in a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Nissa service and /metrics', () => {
  let bus: StreamBus;
  let service: NissaService;
  let http: NissaHttp;

  beforeAll(async () => {
    bus = new StreamBus({ store: new MemoryStreamStore(), ownsStore: true, keyRing, telemetry: new MemoryTelemetrySink() });
    service = new NissaService({ bus });
    await service.start();
    http = await startNissaHttp({ host: '127.0.0.1', port: 0, metrics: service.metrics, summary: () => ({ slo: {}, alerts: {} }) });
  });

  afterAll(async () => {
    await http.close();
    await service.close();
    await bus.close();
  });

  it('serves the prototype names with the values the packets imply, and per-run series', async () => {
    const run = 'run-nissa-1';
    const messages: BusMessage[] = [
      create(RunAnnouncementSchema, { trainingRunId: run, phase: RunPhase.RUNNING }),
      create(SystemStatePacketSchema, { trainingRunId: run, globalStep: 10n, trainingLoss: 0.9, packetId: 'p1' }),
      create(SystemStatePacketSchema, {
        trainingRunId: run,
        globalStep: 20n,
        trainingLoss: 0.7,
        validationLoss: 0.6,
        validationAccuracy: 0.81,
        epochEnd: true,
        packetId: 'p2',
        seedStates: [
          create(SeedStateSchema, { seedId: 's1', stage: SeedLifecycleStage.SEED_STAGE_BLENDING }),
          create(SeedStateSchema, { seedId: 's2', stage: SeedLifecycleStage.SEED_STAGE_BLENDING }),
          create(SeedStateSchema, { seedId: 's3', stage: SeedLifecycleStage.SEED_STAGE_FOSSILIZED }),
        ],
      }),
      create(FieldReportSchema, { reportId: 'r1', outcome: FieldReportOutcome.SUCCESS }),
      create(AdaptationCommandSchema, { commandId: 'c1', issuedBy: 'tamiyo', trainingRunId: run }),
      create(CommandAckSchema, { commandId: 'c1', trainingRunId: run, status: CommandAckStatus.REJECTED, reason: 'stale_command' }),
      buildTelemetryPacket({
        source: 'tamiyo',
        metrics: [
          { name: 'tamiyo.gnn.feature_coverage', value: 0.65, unit: 'ratio' },
          { name: 'tamiyo.gnn.feature_coverage.global.loss', value: 0.5, unit: 'ratio' },
          { name: 'tamiyo.blueprint.risk', value: 0.9, unit: 'score' },
        ],
        events: [
          { description: 'bsds_hazard_critical', level: TelemetryLevel.CRITICAL, attributes: { provenance: 'URABRASK' } },
          { description: 'bp_quarantine', level: TelemetryLevel.WARNING },
        ],
      }),
      buildTelemetryPacket({ source: 'oona', events: [{ description: 'dead_letter', level: TelemetryLevel.ERROR }] }),
      buildTelemetryPacket({ source: 'simic', metrics: [{ name: 'simic.training.reward', value: 2.5, unit: 'reward' }] }),
    ];
    for (const message of messages) await bus.publish(message, { trainingRunId: run });
    await until(() => service.stats().ingested >= messages.length);

    const response = await fetch(`${http.url}/metrics`);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(sample(text, 'esper_training_runs_total')).toBe(1);
    expect(sample(text, 'esper_system_state_packets_total{phase="step"}')).toBe(1);
    expect(sample(text, 'esper_system_state_packets_total{phase="epoch"}')).toBe(1);
    expect(sample(text, 'esper_field_reports_total{outcome="success"}')).toBe(1);
    expect(sample(text, 'esper_telemetry_packets_total{source="tamiyo"}')).toBe(1);
    expect(sample(text, 'esper_tamiyo_bsds_hazard_critical_total{provenance="urabrask"}')).toBe(1);
    expect(sample(text, 'tamiyo_gnn_feature_coverage')).toBeCloseTo(0.65, 5);
    expect(sample(text, 'tamiyo_gnn_feature_coverage_by_type{feature="global.loss"}')).toBeCloseTo(0.5, 5);
    expect(sample(text, 'tamiyo_bsds_quarantine_active')).toBe(1);
    expect(sample(text, 'tamiyo_bsds_elevated_risk')).toBe(1);
    expect(sample(text, 'esper_simic_training_reward_total')).toBe(2.5);
    expect(sample(text, 'esper_simic_training_iterations_total')).toBe(1);
    expect(sample(text, `esper_run_validation_accuracy{run="${run}"}`)).toBeCloseTo(0.81, 5);
    expect(sample(text, `esper_run_global_step{run="${run}"}`)).toBe(20);
    expect(sample(text, `esper_run_seeds{run="${run}",stage="blending"}`)).toBe(2);
    expect(sample(text, `esper_run_seeds{run="${run}",stage="fossilized"}`)).toBe(1);
    expect(sample(text, 'esper_commands_issued_total{issued_by="tamiyo"}')).toBe(1);
    expect(sample(text, 'esper_command_acks_total{status="rejected",reason="stale_command"}')).toBe(1);
    expect(sample(text, 'esper_bus_dead_letters_total{event="dead_letter"}')).toBe(1);
    expect(text).toContain('nissa_ingest_latency_ms_bucket{le="0.1",type="telemetry"}');
    expect(text).toContain('esper_bus_lag_ms_count{type="system_state"} 2');

    expect(await (await fetch(`${http.url}/healthz`)).json()).toMatchObject({ status: 'ok' });
    expect(await (await fetch(`${http.url}/metrics/summary`)).json()).toEqual({ slo: {}, alerts: {} });
  });

  it('keeps per-run series for the most recent runs only: an evicted run leaves no series behind', async () => {
    const metrics = new NissaMetrics({ maxRuns: 1 });
    for (const run of ['run-old', 'run-new']) {
      metrics.state(
        create(SystemStatePacketSchema, {
          trainingRunId: run,
          epochEnd: true,
          validationAccuracy: 0.5,
          seedStates: [create(SeedStateSchema, { seedId: 's1', stage: SeedLifecycleStage.SEED_STAGE_TRAINING })],
        }),
      );
    }
    const text = await metrics.expose();
    expect(text).not.toContain('run="run-old"');
    expect(sample(text, 'esper_run_seeds{run="run-new",stage="training"}')).toBe(1);
    expect(sample(text, 'esper_training_runs_total')).toBe(2);
  });

  it('while lagging, samples step packets and low telemetry, and never drops CRITICAL packets, epoch packets or field reports', () => {
    const lagging = new NissaService({ bus, overloadLagMs: 1_000, sampleEvery: 10 });
    const delivery = (type: BusMessageType, message: BusMessage, priority = MessagePriority.NORMAL): Delivery =>
      ({
        type,
        message,
        priority,
        publishedAtMs: 0,
        trainingRunId: 'r',
        correlationId: '',
        messageId: 'm',
        attempt: 1,
      }) as unknown as Delivery;
    const now = 60_000;
    for (let i = 0; i < 100; i += 1) {
      lagging.ingest(delivery(BusMessageType.SYSTEM_STATE, create(SystemStatePacketSchema, { trainingRunId: 'r' })), now);
      lagging.ingest(
        delivery(
          BusMessageType.TELEMETRY,
          buildTelemetryPacket({ source: 'tolaria', events: [{ description: 'x', level: TelemetryLevel.INFO }] }),
        ),
        now,
      );
    }
    const critical = buildTelemetryPacket({
      source: 'kasmina',
      events: [{ description: 'isolation_violation', level: TelemetryLevel.CRITICAL }],
    });
    for (let i = 0; i < 20; i += 1) {
      lagging.ingest(delivery(BusMessageType.TELEMETRY, critical, MessagePriority.CRITICAL), now);
      lagging.ingest(delivery(BusMessageType.FIELD_REPORT, create(FieldReportSchema, { reportId: `r${i}` })), now);
      lagging.ingest(delivery(BusMessageType.SYSTEM_STATE, create(SystemStatePacketSchema, { trainingRunId: 'r', epochEnd: true })), now);
    }
    const stats = lagging.stats();
    expect(stats.dropped).toBe(180);
    expect(stats.byType).toEqual({ system_state: 10 + 20, telemetry: 10 + 20, field_report: 20 });
  });
});
