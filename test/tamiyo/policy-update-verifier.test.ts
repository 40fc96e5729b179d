/**
 * Policy updates: a signed update verifies and, staged and swapped, changes the live
 * GNN's outputs; every rejection names its reason, emits one `policy_update_rejected`
 * packet at the right priority and leaves the live policy bit-identical and no tensors
 * behind; and no single flipped byte of a signed encoded update is ever accepted.
 */
import { clone, create } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import {
  MessagePriority,
  PolicyUpdateSchema,
  PolicyValidationSummarySchema,
  TelemetryLevel,
  type PolicyUpdate,
} from '../../src/leyline/index.js';
import { HmacSigner, KeyRing, NonceLedger } from '../../src/security/index.js';
import { gnnConfigFor, type GnnConfig } from '../../src/tamiyo/gnn-config.js';
import type { GnnOutput } from '../../src/tamiyo/gnn-output.js';
import { TamiyoGnn } from '../../src/tamiyo/gnn.js';
import { PolicyUpdateEvent, PolicyUpdateMetric } from '../../src/tamiyo/names.js';
import { PolicySlot } from '../../src/tamiyo/policy-slot.js';
import { buildPolicyUpdate } from '../../src/tamiyo/policy-update-builder.js';
import {
  PolicyUpdateRejection,
  PolicyUpdateVerifier,
  type PolicyUpdateVerification,
  type PolicyUpdateVerifierOptions,
} from '../../src/tamiyo/policy-update-verifier.js';
import { architectureOf, policyDigest } from '../../src/tamiyo/policy-weights.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { graphOfSize, TEST_RELATIONS } from './fixtures/graphs.js';
import { errorOf } from './fixtures/errors.js';

const CONFIG = gnnConfigFor(TEST_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 });
const OTHER_CONFIG = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 8, heads: 2 });
const GRAPH = graphOfSize(seededRng(11), 20);
const SECRET = Buffer.from('policy-secret-0123456789abcdef', 'utf8');
const LIVE_VERSION = 'policy-v1';

beforeAll(async () => {
  await initTensorBackend();
});

/** Everything a test needs, disposed by afterEach. */
interface Harness {
  readonly clock: FakeClock;
  readonly signer: HmacSigner;
  readonly ledger: NonceLedger;
  readonly sink: MemoryTelemetrySink;
  readonly verifier: PolicyUpdateVerifier;
  readonly slot: PolicySlot;
}

const slots: PolicySlot[] = [];
let tensorsAtStart = 0;

afterEach(() => {
  for (const slot of slots.splice(0)) slot.dispose();
  expect(tf.memory().numTensors).toBe(tensorsAtStart);
});

function harness(overrides: Partial<PolicyUpdateVerifierOptions> = {}): Harness {
  tensorsAtStart = tf.memory().numTensors;
  const clock = new FakeClock();
  const signer = new HmacSigner(new KeyRing([{ keyId: 'simic', secret: SECRET }]), { clock });
  const ledger = new NonceLedger({ clock });
  const sink = new MemoryTelemetrySink();
  const verifier = new PolicyUpdateVerifier({
    signer,
    ledger,
    telemetry: sink,
    clock,
    expectedArchitecture: architectureOf(CONFIG),
    ...overrides,
  });
  const slot = new PolicySlot({ gnn: new TamiyoGnn(CONFIG, seededRng(1)), version: LIVE_VERSION }, { telemetry: sink, clock });
  slots.push(slot);
  return { clock, signer, ledger, sink, verifier, slot };
}

/** A signed update carrying a GNN of `config` initialised from `seed`. */
function updateFor(
  signer: HmacSigner,
  clock: FakeClock,
  { seed = 2, version = 'policy-v2', config = CONFIG }: { seed?: number; version?: string; config?: GnnConfig } = {},
): PolicyUpdate {
  const gnn = new TamiyoGnn(config, seededRng(seed));
  try {
    return buildPolicyUpdate(gnn, { policyId: 'simic-ppo', trainingRunId: 'run-7', version, signer, clock });
  } finally {
    gnn.dispose();
  }
}

/** Outputs of a fresh GNN initialised from `seed` (what an update from that seed should give). */
function outputsOfSeed(seed: number): Uint8Array {
  const gnn = new TamiyoGnn(CONFIG, seededRng(seed));
  try {
    return fingerprint(gnn.forward(GRAPH));
  } finally {
    gnn.dispose();
  }
}

/** Every output value as raw float32 bytes, for bit-identical comparisons. */
function fingerprint(out: GnnOutput): Uint8Array {
  const parts = [
    out.actionLogits,
    out.paramVector,
    out.blendLogits,
    out.schedule,
    out.riskLogits,
    Float32Array.of(out.value),
    out.breakerLogits,
    out.seedScores,
    out.siteScores,
    out.blueprintScores,
  ];
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    all.set(p, offset);
    offset += p.length;
  }
  return new Uint8Array(all.buffer);
}

function liveOutputs(slot: PolicySlot): Uint8Array {
  return fingerprint(slot.current.gnn.forward(GRAPH));
}

/** A copy of `update` edited by `edit`, then signed again (so only the edit is wrong). */
function resigned(signer: HmacSigner, update: PolicyUpdate, edit: (copy: PolicyUpdate) => void): PolicyUpdate {
  const copy = clone(PolicyUpdateSchema, update);
  edit(copy);
  return signer.sign(PolicyUpdateSchema, copy);
}

function reasonOf(result: PolicyUpdateVerification): string {
  if (result.ok) {
    result.loaded.gnn.dispose();
    return 'accepted';
  }
  return result.reason;
}

/**
 * Verifies `update`, expects `reason`, one rejection packet at `priority`, no tensors
 * allocated, and the live policy unchanged (bit-identical outputs, nothing to swap).
 */
function expectRejected(
  h: Harness,
  update: PolicyUpdate,
  reason: PolicyUpdateRejection,
  priority: MessagePriority,
  currentVersion = LIVE_VERSION,
): void {
  const before = liveOutputs(h.slot);
  const tensors = tf.memory().numTensors;
  const packets = h.sink.packets.length;

  expect(reasonOf(h.verifier.verify(update, currentVersion))).toBe(reason);

  expect(tf.memory().numTensors).toBe(tensors);
  expect(h.sink.packets).toHaveLength(packets + 1);
  const packet = h.sink.packets.at(-1);
  expect(packet?.priority).toBe(priority);
  expect(packet?.sourceSubsystem).toBe('tamiyo');
  const event = packet?.events[0];
  expect(event?.description).toBe(PolicyUpdateEvent.REJECTED);
  expect(event?.level).toBe(priority === MessagePriority.CRITICAL ? TelemetryLevel.CRITICAL : TelemetryLevel.ERROR);
  expect(event?.attributes).toMatchObject({ reason, policy_id: update.policyId, version: update.tamiyoPolicyVersion });
  expect(h.verifier.snapshot().rejectionsByReason[reason]).toBeGreaterThan(0);

  expect(h.slot.swapIfPending()).toEqual({ swapped: false, from: LIVE_VERSION, to: LIVE_VERSION });
  expect(liveOutputs(h.slot)).toEqual(before);
}

describe('PolicyUpdateVerifier + PolicySlot: accepted update', () => {
  it('verifies a signed update, and once staged and swapped the next forward uses its weights', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock, { seed: 2 });
    const before = liveOutputs(h.slot);
    const expected = outputsOfSeed(2);
    expect(expected).not.toEqual(before);
    const oneModel = tf.memory().numTensors;

    const result = h.verifier.verify(update, LIVE_VERSION);
    if (!result.ok) throw new Error(`rejected: ${result.reason} ${result.detail}`);
    expect(result.loaded.version).toBe('policy-v2');
    expect(result.update.policyId).toBe('simic-ppo');
    expect(h.verifier.snapshot()).toMatchObject({ acceptedTotal: 1, rejectedTotal: 0 });
    expect(h.sink.packets).toHaveLength(0);

    h.slot.stage(result.loaded);
    expect(h.slot.pendingVersion).toBe('policy-v2');
    expect(liveOutputs(h.slot)).toEqual(before); // staging alone changes nothing
    const old = h.slot.current.gnn;

    expect(h.slot.swapIfPending()).toEqual({ swapped: true, from: LIVE_VERSION, to: 'policy-v2' });
    expect(h.slot.current.version).toBe('policy-v2');
    expect(h.slot.pendingVersion).toBeUndefined();
    expect(liveOutputs(h.slot)).toEqual(expected);
    expect(old.disposed).toBe(true);
    expect(tf.memory().numTensors).toBe(oneModel); // the old model was freed
    expect(h.slot.swapIfPending()).toEqual({ swapped: false, from: 'policy-v2', to: 'policy-v2' });

    const applied = h.sink.packets.at(-1);
    expect(applied?.events[0]?.description).toBe(PolicyUpdateEvent.APPLIED);
    expect(applied?.events[0]?.attributes).toMatchObject({ from: LIVE_VERSION, to: 'policy-v2' });
    expect(applied?.priority).toBe(MessagePriority.NORMAL);
    expect(h.slot.snapshot()).toMatchObject({ version: 'policy-v2', swapsTotal: 1, supersededTotal: 0 });
  });

  it('accepts the encoded bytes of a signed update (verifyEncoded)', () => {
    const h = harness();
    const gnn = new TamiyoGnn(CONFIG, seededRng(3));
    const unsigned = buildPolicyUpdate(gnn, {
      policyId: 'p',
      trainingRunId: 'run-7',
      version: 'policy-v3',
      signer: h.signer,
      clock: h.clock,
    });
    gnn.dispose();
    const { bytes } = h.signer.signEncoded(PolicyUpdateSchema, unsigned);
    const result = h.verifier.verifyEncoded(bytes, LIVE_VERSION);
    expect(result.ok).toBe(true);
    if (result.ok) result.loaded.gnn.dispose();
  });

  it('accepts an update with a passed validation summary', () => {
    const h = harness();
    const gnn = new TamiyoGnn(CONFIG, seededRng(4));
    const update = buildPolicyUpdate(gnn, {
      policyId: 'p',
      trainingRunId: 'run-7',
      version: 'policy-v4',
      signer: h.signer,
      clock: h.clock,
      validation: create(PolicyValidationSummarySchema, { passed: true, checks: [{ name: 'average_reward', passed: true }] }),
    });
    gnn.dispose();
    expect(reasonOf(h.verifier.verify(update, LIVE_VERSION))).toBe('accepted');
  });

  it('exports accepted_total and rejected_total for every reason', () => {
    const h = harness();
    expect(reasonOf(h.verifier.verify(updateFor(h.signer, h.clock), LIVE_VERSION))).toBe('accepted');
    expect(reasonOf(h.verifier.verify(updateFor(h.signer, h.clock), 'policy-v2'))).toBe(PolicyUpdateRejection.VERSION_NOT_NEWER);
    const metrics = h.verifier.metrics();
    expect(metrics).toContainEqual({ name: PolicyUpdateMetric.ACCEPTED_TOTAL, value: 1, unit: 'count' });
    const rejected = metrics.filter((m) => m.name === 'tamiyo.policy_update.rejected_total');
    expect(rejected).toHaveLength(Object.values(PolicyUpdateRejection).length);
    expect(rejected).toContainEqual({
      name: 'tamiyo.policy_update.rejected_total',
      value: 1,
      unit: 'count',
      attributes: { reason: 'version_not_newer' },
    });
    expect(h.verifier.snapshot().rejectedTotal).toBe(1);
  });
});

describe('PolicyUpdateVerifier: rejections leave the live policy untouched', () => {
  it('rejects a checksum that is not the SHA-256 of the payload (checksum_mismatch, HIGH)', () => {
    const h = harness();
    const update = resigned(h.signer, updateFor(h.signer, h.clock), (u) => {
      u.checksum = policyDigest(Uint8Array.of(1, 2, 3));
    });
    expectRejected(h, update, PolicyUpdateRejection.CHECKSUM_MISMATCH, MessagePriority.HIGH);
  });

  it('rejects a flipped signature byte (invalid_signature, CRITICAL)', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock);
    const signature = update.security!.signature;
    signature[0] = (signature[0] as number) ^ 0x01;
    expectRejected(h, update, PolicyUpdateRejection.INVALID_SIGNATURE, MessagePriority.CRITICAL);
  });

  it('rejects a payload changed after signing, checksum fixed up (invalid_signature)', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock);
    update.payload = update.payload.slice();
    update.payload[100] = (update.payload[100] as number) ^ 0xff;
    update.checksum = policyDigest(update.payload);
    expectRejected(h, update, PolicyUpdateRejection.INVALID_SIGNATURE, MessagePriority.CRITICAL);
  });

  it('rejects a key outside the ring (unknown_key_id) and a wrong secret under a known key id (invalid_signature)', () => {
    const h = harness();
    const stranger = new HmacSigner(new KeyRing([{ keyId: 'stranger', secret: SECRET }]), { clock: h.clock });
    expectRejected(h, updateFor(stranger, h.clock), PolicyUpdateRejection.UNKNOWN_KEY_ID, MessagePriority.CRITICAL);

    const impostor = new HmacSigner(new KeyRing([{ keyId: 'simic', secret: Buffer.from('another-secret-0123456789') }]), {
      clock: h.clock,
    });
    expectRejected(h, updateFor(impostor, h.clock), PolicyUpdateRejection.INVALID_SIGNATURE, MessagePriority.CRITICAL);
  });

  it('rejects an unsigned update (missing_security) and a malformed signature', () => {
    const h = harness();
    const unsigned = clone(PolicyUpdateSchema, updateFor(h.signer, h.clock));
    unsigned.security = undefined;
    expectRejected(h, unsigned, PolicyUpdateRejection.MISSING_SECURITY, MessagePriority.CRITICAL);

    const short = updateFor(h.signer, h.clock);
    short.security!.signature = short.security!.signature.slice(0, 16);
    expectRejected(h, short, PolicyUpdateRejection.MALFORMED_SIGNATURE, MessagePriority.CRITICAL);
  });

  it('rejects an update older than its freshness window (stale_update) and one from the future (future_update)', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock);
    h.clock.advance(60_001);
    expectRejected(h, update, PolicyUpdateRejection.STALE_UPDATE, MessagePriority.CRITICAL);

    const ahead = new FakeClock({ wallMs: h.clock.wallMs() + 10_000 });
    const early = new HmacSigner(new KeyRing([{ keyId: 'simic', secret: SECRET }]), { clock: ahead });
    expectRejected(h, updateFor(early, ahead), PolicyUpdateRejection.FUTURE_UPDATE, MessagePriority.CRITICAL);
  });

  it('rejects a replayed update (nonce_replayed) after accepting it once', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock);
    expect(reasonOf(h.verifier.verify(update, LIVE_VERSION))).toBe('accepted');
    expectRejected(h, update, PolicyUpdateRejection.NONCE_REPLAYED, MessagePriority.CRITICAL);
  });

  it('does not consume the nonce of a rejected update', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock);
    expectRejected(h, update, PolicyUpdateRejection.VERSION_NOT_NEWER, MessagePriority.HIGH, 'policy-v2');
    expect(h.ledger.has(update.security!.nonce)).toBe(false);
    expect(reasonOf(h.verifier.verify(update, LIVE_VERSION))).toBe('accepted');
    expect(h.ledger.has(update.security!.nonce)).toBe(true);
  });

  it('rejects a foreign architecture id or version (architecture_mismatch, HIGH)', () => {
    const h = harness();
    const base = updateFor(h.signer, h.clock);
    const foreignId = resigned(h.signer, base, (u) => {
      u.architecture!.id = 'simic_mlp';
    });
    expectRejected(h, foreignId, PolicyUpdateRejection.ARCHITECTURE_MISMATCH, MessagePriority.HIGH);
    const nextVersion = resigned(h.signer, base, (u) => {
      u.architecture!.version = 2;
    });
    expectRejected(h, nextVersion, PolicyUpdateRejection.ARCHITECTURE_MISMATCH, MessagePriority.HIGH);
    const unset = resigned(h.signer, base, (u) => {
      u.architecture = undefined;
    });
    expectRejected(h, unset, PolicyUpdateRejection.ARCHITECTURE_MISMATCH, MessagePriority.HIGH);
  });

  it('rejects weights for another GNN config (architecture_mismatch) before allocating any tensor', () => {
    const h = harness();
    const update = updateFor(h.signer, h.clock, { config: OTHER_CONFIG });
    expectRejected(h, update, PolicyUpdateRejection.ARCHITECTURE_MISMATCH, MessagePriority.HIGH);
  });

  it('rejects the live version (version_not_newer) and an empty version (missing_version)', () => {
    const h = harness();
    const same = updateFor(h.signer, h.clock, { version: LIVE_VERSION });
    expectRejected(h, same, PolicyUpdateRejection.VERSION_NOT_NEWER, MessagePriority.HIGH);
    const empty = resigned(h.signer, updateFor(h.signer, h.clock), (u) => {
      u.tamiyoPolicyVersion = '';
    });
    expectRejected(h, empty, PolicyUpdateRejection.MISSING_VERSION, MessagePriority.HIGH);
  });

  it('rejects a truncated payload with a matching checksum (invalid_payload, HIGH)', () => {
    const h = harness();
    const update = resigned(h.signer, updateFor(h.signer, h.clock), (u) => {
      u.payload = u.payload.slice(0, u.payload.length - 10);
      u.checksum = policyDigest(u.payload);
    });
    expectRejected(h, update, PolicyUpdateRejection.INVALID_PAYLOAD, MessagePriority.HIGH);
    const empty = resigned(h.signer, update, (u) => {
      u.payload = new Uint8Array(0);
      u.checksum = policyDigest(u.payload);
    });
    expectRejected(h, empty, PolicyUpdateRejection.INVALID_PAYLOAD, MessagePriority.HIGH);
  });

  it('rejects a payload whose version differs from tamiyo_policy_version (invalid_payload)', () => {
    const h = harness();
    const update = resigned(h.signer, updateFor(h.signer, h.clock, { version: 'policy-v2' }), (u) => {
      u.tamiyoPolicyVersion = 'policy-v9';
    });
    expectRejected(h, update, PolicyUpdateRejection.INVALID_PAYLOAD, MessagePriority.HIGH);
  });

  it('rejects a failed or self-contradicting validation summary (validation_failed) and frees the loaded model', () => {
    const h = harness();
    const failed = resigned(h.signer, updateFor(h.signer, h.clock), (u) => {
      u.validation = create(PolicyValidationSummarySchema, { passed: false, checks: [{ name: 'average_reward', passed: false }] });
    });
    expectRejected(h, failed, PolicyUpdateRejection.VALIDATION_FAILED, MessagePriority.HIGH);
    const contradictory = resigned(h.signer, updateFor(h.signer, h.clock), (u) => {
      u.validation = create(PolicyValidationSummarySchema, { passed: true, checks: [{ name: 'policy_loss', passed: false }] });
    });
    expectRejected(h, contradictory, PolicyUpdateRejection.VALIDATION_FAILED, MessagePriority.HIGH);
    expect(h.sink.packets.at(-1)?.events[0]?.attributes['detail']).toContain('policy_loss');
  });

  it('reports the first failing check: a stale update with a bad checksum is stale_update', () => {
    const h = harness();
    const update = resigned(h.signer, updateFor(h.signer, h.clock), (u) => {
      u.checksum = new Uint8Array(32);
    });
    h.clock.advance(120_000);
    expectRejected(h, update, PolicyUpdateRejection.STALE_UPDATE, MessagePriority.CRITICAL);
  });

  it('rejects bytes that do not decode (decode_failed)', () => {
    const h = harness();
    const result = h.verifier.verifyEncoded(Uint8Array.of(0x0a, 0xff, 0xff), LIVE_VERSION);
    expect(reasonOf(result)).toBe(PolicyUpdateRejection.DECODE_FAILED);
    expect(h.sink.packets.at(-1)?.priority).toBe(MessagePriority.CRITICAL);
  });
});

describe('PolicyUpdateVerifier options', () => {
  /** The error of constructing a verifier with `options` over valid defaults. */
  function optionError(options: Partial<PolicyUpdateVerifierOptions>, ttlSeconds?: number): unknown {
    const clock = new FakeClock();
    return errorOf(
      () =>
        new PolicyUpdateVerifier({
          signer: new HmacSigner(new KeyRing([{ keyId: 'simic', secret: SECRET }]), { clock }),
          ledger: new NonceLedger({ clock, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) }),
          telemetry: new MemoryTelemetrySink(),
          clock,
          expectedArchitecture: architectureOf(CONFIG),
          ...options,
        }),
    );
  }

  it.each([
    ['a nonce TTL shorter than the freshness window plus skew', 'ledger', {}, 30],
    ['a freshness window of 0 (shared signed-message rules)', 'maxFreshnessWindowMs', { maxFreshnessWindowMs: 0 }, undefined],
    ['a negative future skew (shared signed-message rules)', 'futureSkewMs', { futureSkewMs: -1 }, undefined],
    [
      'an expectedArchitecture that is not an architecture string',
      'expectedArchitecture',
      { expectedArchitecture: 'tamiyo_gnn_v1' },
      undefined,
    ],
  ])('refuses %s, naming the field %s', (_what, field, options: Partial<PolicyUpdateVerifierOptions>, ttlSeconds) => {
    const error = optionError(options, ttlSeconds);
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ owner: 'PolicyUpdateVerifier', field });
  });
});

describe('PolicyUpdateVerifier.verifyEncoded (property)', () => {
  it('never accepts a signed encoded update with any single byte flipped', () => {
    const h = harness();
    const { bytes } = h.signer.signEncoded(PolicyUpdateSchema, updateFor(h.signer, h.clock));
    const n = bytes.length;
    // Bias towards the small fields before the payload and the security block after it.
    const index = fc.oneof(
      fc.integer({ min: 0, max: Math.min(n, 256) - 1 }),
      fc.integer({ min: Math.max(0, n - 256), max: n - 1 }),
      fc.integer({ min: 0, max: n - 1 }),
    );
    fc.assert(
      fc.property(index, fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const mutated = bytes.slice();
        mutated[at] = (mutated[at] as number) ^ mask;
        const tensors = tf.memory().numTensors;
        const result = h.verifier.verifyEncoded(mutated, LIVE_VERSION);
        if (result.ok) result.loaded.gnn.dispose();
        return !result.ok && tf.memory().numTensors === tensors;
      }),
      { numRuns: 300 },
    );
    expect(h.verifier.snapshot().acceptedTotal).toBe(0);
    // The untouched bytes still verify: no rejected attempt consumed the nonce.
    expect(reasonOf(h.verifier.verifyEncoded(bytes, LIVE_VERSION))).toBe('accepted');
  });
});
