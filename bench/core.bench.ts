/**
 * Core benchmark: medians for Leyline encode+decode, command sign+encode+verify, and
 * RecordLog appends/s, each beside a baseline measured in the same run (JSON round trip,
 * raw HMAC, raw write+fsync). Prints progress to stderr and one JSON object as the last
 * line of stdout.
 *
 *   npm run bench:core
 */
import { createHmac } from 'node:crypto';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, toBinary, toJson, fromJson, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import {
  AdaptationCommandSchema,
  BlendMode,
  BlendModeSource,
  CommandType,
  SeedLifecycleStage,
  SeedOperation,
  SystemStatePacketSchema,
  type AdaptationCommand,
} from '../src/leyline/index.js';
import { buildDecisionMetadata, buildTrainingMetrics, decodeMessage, MemoryTelemetrySink, RecordLog } from '../src/core/index.js';
import { CommandVerifier, HmacSigner, KeyRing, NonceLedger } from '../src/security/index.js';

const BATCHES = 31;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** Median µs per op over BATCHES batches of `perBatch` ops (after one warm-up batch). */
function microsPerOp(perBatch: number, op: (i: number) => void): number {
  let i = 0;
  for (let k = 0; k < perBatch; k += 1) op(i++);
  const samples: number[] = [];
  for (let b = 0; b < BATCHES; b += 1) {
    const start = process.hrtime.bigint();
    for (let k = 0; k < perBatch; k += 1) op(i++);
    samples.push(Number(process.hrtime.bigint() - start) / 1e3 / perBatch);
  }
  return median(samples);
}

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

function statePacket() {
  return create(SystemStatePacketSchema, {
    version: 1,
    currentEpoch: 12,
    validationAccuracy: 0.91,
    validationLoss: 0.31,
    timestampNs: 1_790_000_000_000_000_000n,
    packetId: 'bench-state-000001',
    globalStep: 48_213n,
    trainingLoss: 0.29,
    sourceSubsystem: 'tolaria',
    trainingRunId: 'run-bench',
    experimentName: 'mnist-mlp-grow',
    hardwareContext: { deviceType: 'cpu', deviceId: 'cpu0', totalMemoryGb: 24, availableMemoryGb: 20, utilizationPercent: 73 },
    seedStates: Array.from({ length: 4 }, (_, i) => ({
      seedId: `seed-${i}`,
      stage: SeedLifecycleStage.SEED_STAGE_BLENDING,
      gradientNorm: 0.8 + i,
      learningRate: 1e-3,
      layerDepth: i + 1,
      ageEpochs: 3,
      riskScore: 0.1,
      blueprintId: 'BP001',
      siteId: `block${i}.post`,
      metrics: { alpha: 0.4, alphaSteps: 8, alphaTotalSteps: 20, alphaTemperature: 2, blendAllowed: true },
    })),
    metrics: buildTrainingMetrics({
      optimizerLr: 1e-3,
      lossDelta: -0.01,
      lossEwma: 0.3,
      stepLatencyMs: 11.2,
      samplesPerS: 5400,
      epochsTotal: 20,
      gradientNorm: 1.3,
      extraMetrics: [{ name: 'tolaria.custom', value: 1, unit: 'count' }],
    }),
  });
}

function command(commandId: string): AdaptationCommand {
  return create(AdaptationCommandSchema, {
    version: 1,
    commandId,
    commandType: CommandType.COMMAND_SEED,
    targetSeedId: 'seed-1',
    trainingRunId: 'run-bench',
    issuedBy: 'tamiyo',
    issuedAt: timestampFromMs(Date.now()),
    payload: {
      case: 'seedOperation',
      value: { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'BP007', blendAlpha: 0.2, blendMode: BlendMode.CONVEX },
    },
    metadata: buildDecisionMetadata({
      policy: { actionId: 3, valueEstimate: 0.12, riskScore: 0.2, policyVersion: 'tamiyo-gnn-v1' },
      blend: { mode: BlendMode.CONVEX, modeSource: BlendModeSource.POLICY, alpha: 0.2, scheduleStart: 0, scheduleEnd: 1 },
      selection: { seedId: 'seed-1', blueprintId: 'BP007', seedScore: 0.8, blueprintScore: 0.7 },
    }),
  });
}

function codecBench<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>) {
  const protobufUs = microsPerOp(2000, () => {
    decodeMessage(schema, toBinary(schema, message));
  });
  const json = toJson(schema, message);
  const jsonUs = microsPerOp(2000, () => {
    fromJson(schema, JSON.parse(JSON.stringify(json)) as never);
  });
  return {
    bytes: toBinary(schema, message).length,
    encode_decode_us_median: round(protobufUs),
    baseline_json_roundtrip_us_median: round(jsonUs),
    ratio_vs_json: round(protobufUs / jsonUs, 3),
  };
}

function securityBench() {
  const ring = new KeyRing([{ keyId: 'bench', secret: Buffer.from('esper-bench-secret-0123456789') }]);
  const signer = new HmacSigner(ring);
  const ledger = new NonceLedger({ ttlSeconds: 3600, maxEntries: 1_000_000 });
  const verifier = new CommandVerifier({ signer, ledger, sink: new MemoryTelemetrySink(16), source: 'bench' });
  const template = command('cmd-template');
  let rejected = 0;
  const us = microsPerOp(1000, (i) => {
    const { bytes } = signer.signEncoded(AdaptationCommandSchema, { ...template, commandId: `cmd-${i}` });
    const result = verifier.verifyEncoded(bytes);
    if (!result.ok) rejected += 1;
  });
  const bytes = toBinary(AdaptationCommandSchema, template);
  const secret = Buffer.from('esper-bench-secret-0123456789');
  const hmacUs = microsPerOp(2000, () => {
    createHmac('sha256', secret).update(bytes).digest();
    createHmac('sha256', secret).update(bytes).digest();
  });
  if (rejected > 0) throw new Error(`${rejected} benchmark commands were rejected`);
  return {
    sign_encode_verify_us_median: round(us),
    baseline_two_raw_hmacs_us_median: round(hmacUs),
    ratio_vs_raw_hmac: round(us / hmacUs, 3),
    target_us: 50,
    meets_target: us < 50,
  };
}

async function recordLogBench(dir: string) {
  const payload = toBinary(SystemStatePacketSchema, statePacket());
  const perRecordCount = 300;
  const rawCount = 300;
  const groupCount = 20_000;
  const groupConcurrency = 64;

  const raw = await open(path.join(dir, 'raw.bin'), 'a');
  let start = performance.now();
  for (let i = 0; i < rawCount; i += 1) {
    await raw.write(payload);
    await raw.datasync();
  }
  const rawPerS = rawCount / ((performance.now() - start) / 1000);
  await raw.close();

  const perRecord = await RecordLog.open(path.join(dir, 'per-record.wal'), { fsync: 'per-record' });
  start = performance.now();
  for (let i = 0; i < perRecordCount; i += 1) await perRecord.append(payload);
  const perRecordPerS = perRecordCount / ((performance.now() - start) / 1000);
  await perRecord.close();

  const group = await RecordLog.open(path.join(dir, 'group.wal'), { fsync: 'group' });
  start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: groupConcurrency }, async () => {
      while (next < groupCount) {
        next += 1;
        await group.append(payload);
      }
    }),
  );
  const groupPerS = groupCount / ((performance.now() - start) / 1000);
  const groupStats = group.stats();
  await group.close();

  return {
    record_bytes: payload.length,
    per_record_fsync_appends_per_s: Math.round(perRecordPerS),
    baseline_raw_write_fsync_per_s: Math.round(rawPerS),
    per_record_ratio_vs_raw: round(perRecordPerS / rawPerS, 3),
    group_commit_appends_per_s: Math.round(groupPerS),
    group_commit_concurrency: groupConcurrency,
    group_commit_fsyncs: groupStats.fsyncs,
    group_commit_appends: groupCount,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'esper-bench-'));
  try {
    process.stderr.write('codec…\n');
    const systemState = codecBench(SystemStatePacketSchema, statePacket());
    const adaptationCommand = codecBench(AdaptationCommandSchema, command('cmd-codec'));
    process.stderr.write('security…\n');
    const security = securityBench();
    process.stderr.write('record log…\n');
    const recordLog = await recordLogBench(dir);
    process.stdout.write(
      `${JSON.stringify({
        bench: 'core',
        node: process.version,
        batches: BATCHES,
        system_state_packet: systemState,
        adaptation_command: adaptationCommand,
        command_security: security,
        record_log: recordLog,
      })}\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
