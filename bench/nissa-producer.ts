/**
 * One synthetic trainer for `bench/nissa.bench.ts`, in a process of its own: publishes what a
 * training run puts on the bus — per step a state packet (two seeds) and a telemetry packet,
 * per epoch (every 100 steps) an epoch packet, a command, its acknowledgement, a field report
 * and a CRITICAL telemetry packet — at `rate` steps/s (0: as fast as it can) for `durationMs`,
 * then prints one JSON line with what it sent.
 *
 * Usage: node --import tsx bench/nissa-producer.ts <redisUrl> <streamPrefix> <runId> <rate> <durationMs> <secret>
 */
import { create } from '@bufbuild/protobuf';
import { buildTelemetryPacket, loadSettings } from '../src/core/index.js';
import {
  AdaptationCommandSchema,
  CommandAckSchema,
  CommandAckStatus,
  FieldReportOutcome,
  FieldReportSchema,
  SeedLifecycleStage,
  SeedStateSchema,
  SystemStatePacketSchema,
  TelemetryLevel,
} from '../src/leyline/index.js';
import { openBusFromSettings } from '../src/oona/index.js';
import { KeyRing } from '../src/security/index.js';

const [redisUrl, streamPrefix, runId, rateText, durationText, secret] = process.argv.slice(2);
if (redisUrl === undefined || streamPrefix === undefined || runId === undefined || secret === undefined) {
  throw new Error('usage: nissa-producer <redisUrl> <streamPrefix> <runId> <rate> <durationMs> <secret>');
}
const rate = Number(rateText);
const durationMs = Number(durationText);
const settings = loadSettings({ env: {}, overrides: { oona: { busUrl: redisUrl, streamPrefix }, security: { leylineSecret: secret } } });
const bus = openBusFromSettings(settings, { keyRing: KeyRing.fromSettings(settings.security), telemetry: { emit: () => undefined } });
const sent = { steps: 0, state: 0, telemetry: 0, critical: 0, fieldReports: 0, commands: 0, acks: 0, shed: 0 };
const started = performance.now();
const seeds = [
  create(SeedStateSchema, { seedId: 'hidden1#1', stage: SeedLifecycleStage.SEED_STAGE_BLENDING }),
  create(SeedStateSchema, { seedId: 'hidden2#2', stage: SeedLifecycleStage.SEED_STAGE_TRAINING }),
];
const inFlight = new Set<Promise<unknown>>();
const track = (publish: Promise<{ status: string }>, kind: keyof typeof sent): void => {
  const settled = publish.then((receipt) => {
    if (receipt.status === 'shed') sent.shed += 1;
    else sent[kind] += 1;
  });
  inFlight.add(settled);
  void settled.finally(() => inFlight.delete(settled));
};

for (let step = 1; performance.now() - started < durationMs; step += 1) {
  if (rate > 0) {
    const due = started + (step * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const epochEnd = step % 100 === 0;
  track(
    bus.publish(
      create(SystemStatePacketSchema, {
        trainingRunId: runId,
        packetId: `${runId}-${step}`,
        globalStep: BigInt(step),
        currentEpoch: Math.floor(step / 100),
        trainingLoss: 1 / step,
        epochEnd,
        ...(epochEnd ? { validationAccuracy: 0.8, validationLoss: 0.4 } : {}),
        seedStates: seeds,
      }),
    ),
    'state',
  );
  track(
    bus.publish(
      buildTelemetryPacket({
        source: 'tolaria',
        trainingRunId: runId,
        metrics: [
          { name: 'tolaria.training.loss', value: 1 / step, unit: 'loss' },
          { name: 'tolaria.training.step_ms', value: 2.5, unit: 'ms' },
        ],
      }),
    ),
    'telemetry',
  );
  if (epochEnd) {
    const commandId = `${runId}-c${step}`;
    track(bus.publish(create(AdaptationCommandSchema, { commandId, trainingRunId: runId, issuedBy: 'tamiyo' })), 'commands');
    track(bus.publish(create(CommandAckSchema, { commandId, trainingRunId: runId, status: CommandAckStatus.APPLIED })), 'acks');
    track(bus.publish(create(FieldReportSchema, { reportId: `${runId}-r${step}`, outcome: FieldReportOutcome.SUCCESS })), 'fieldReports');
    track(
      bus.publish(
        buildTelemetryPacket({
          source: 'kasmina',
          trainingRunId: runId,
          events: [{ description: 'isolation_violation', level: TelemetryLevel.CRITICAL, attributes: { seed_id: 'hidden1#1' } }],
        }),
      ),
      'critical',
    );
  }
  sent.steps = step;
  // Keep the producer honest: never more than a few hundred publishes outstanding.
  if (inFlight.size > 256) await Promise.race(inFlight);
}
while (inFlight.size > 0) await Promise.all([...inFlight]);
await bus.close();
process.stdout.write(`${JSON.stringify({ runId, ...sent, wallMs: performance.now() - started })}\n`);
