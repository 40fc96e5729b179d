import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { durationFromMs } from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, isEsperError, MemoryTelemetrySink, type Clock } from '../../src/core/index.js';
import {
  AdaptationCommandSchema,
  canonicalBytes,
  CommandType,
  MessagePriority,
  SeedOperation,
  TelemetryLevel,
  type AdaptationCommand,
} from '../../src/leyline/index.js';
import {
  CommandVerifier,
  RejectionReason,
  type CommandVerifierOptions,
  type VerificationResult,
} from '../../src/security/command-verifier.js';
import { KeyRing } from '../../src/security/key-ring.js';
import { NonceLedger } from '../../src/security/nonce-ledger.js';
import { HmacSigner } from '../../src/security/signer.js';
import { arbitraryMessage } from '../support/arbitrary-message.js';
import { padVarint, readFields, reframe, reframingArbitrary, withValue, writeFields, type WireField } from '../support/wire.js';

/** The plain-object init form of a command. */
type CommandInit = Exclude<MessageInitShape<typeof AdaptationCommandSchema>, AdaptationCommand>;

const SECRET_NEW = Buffer.from('new-secret-0123456789abcdef', 'utf8');
const SECRET_OLD = Buffer.from('old-secret-0123456789abcdef', 'utf8');

interface Harness {
  readonly clock: FakeClock;
  readonly signer: HmacSigner;
  readonly ledger: NonceLedger;
  readonly sink: MemoryTelemetrySink;
  readonly verifier: CommandVerifier;
}

function harness(overrides: Partial<CommandVerifierOptions> = {}, clock = new FakeClock()): Harness {
  const ring = new KeyRing([
    { keyId: 'k-new', secret: SECRET_NEW },
    { keyId: 'k-old', secret: SECRET_OLD },
  ]);
  const signer = new HmacSigner(ring, { clock });
  const ledger = new NonceLedger({ clock });
  const sink = new MemoryTelemetrySink();
  const verifier = new CommandVerifier({
    signer,
    ledger,
    sink,
    source: 'kasmina',
    clock,
    ...overrides,
  });
  return { clock, signer, ledger, sink, verifier };
}

function seedCommand(fields: CommandInit = {}): AdaptationCommand {
  return create(AdaptationCommandSchema, {
    version: 1,
    commandId: 'cmd-1',
    commandType: CommandType.COMMAND_SEED,
    targetSeedId: 'seed-0',
    trainingRunId: 'run-7',
    issuedBy: 'tamiyo',
    payload: {
      case: 'seedOperation',
      value: { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'bp-conv' },
    },
    ...fields,
  });
}

/** Recomputes the signature after a test edited a signed command. */
function resign(signer: HmacSigner, command: AdaptationCommand): AdaptationCommand {
  const security = command.security;
  if (security === undefined) throw new Error('command has no security block');
  security.signature = new Uint8Array(0);
  security.signature = signer.mac(security.keyId, canonicalBytes(AdaptationCommandSchema, command));
  return command;
}

function rejectedWith(result: VerificationResult): string {
  return result.ok ? 'accepted' : result.reason;
}

describe('CommandVerifier', () => {
  describe('accept path', () => {
    it('accepts a freshly signed command without emitting telemetry', () => {
      const { signer, sink, verifier } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      const result = verifier.verify(command);
      expect(result).toEqual({ ok: true, command });
      expect(sink.packets).toHaveLength(0);
      expect(verifier.snapshot()).toMatchObject({ acceptedTotal: 1, rejectedTotal: 0 });
    });

    it('accepts the encoded bytes of a signed command and returns the decoded command', () => {
      const { signer, verifier } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      const result = verifier.verifyEncoded(toBinary(AdaptationCommandSchema, command));
      expect(result.ok).toBe(true);
      expect(result.ok && result.command.commandId).toBe('cmd-1');
    });
  });

  describe('rejection reasons, in order', () => {
    it('reports missing_security for an unsigned command, ahead of its missing timestamp', () => {
      const { verifier } = harness();
      expect(rejectedWith(verifier.verify(seedCommand()))).toBe(RejectionReason.MISSING_SECURITY);
    });

    it('reports unknown_key_id for a key outside the ring, ahead of the signature check', () => {
      const { verifier, clock } = harness();
      const stranger = new HmacSigner(new KeyRing([{ keyId: 'k-stranger', secret: Buffer.from('stranger-secret-0123456') }]), { clock });
      const command = stranger.sign(AdaptationCommandSchema, seedCommand());
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.UNKNOWN_KEY_ID);

      const emptyKey = stranger.sign(AdaptationCommandSchema, seedCommand());
      (emptyKey.security as { keyId: string }).keyId = '';
      expect(rejectedWith(verifier.verify(emptyKey))).toBe(RejectionReason.UNKNOWN_KEY_ID);
    });

    it('reports missing_signature for an empty signature, ahead of staleness', () => {
      const { verifier, signer, clock } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      command.security!.signature = new Uint8Array(0);
      clock.advance(3_600_000);
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.MISSING_SIGNATURE);
    });

    it.each([1, 31, 33, 64, 1 << 20])('reports malformed_signature for a %i-byte signature', (length) => {
      const { verifier, signer } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      command.security!.signature = new Uint8Array(length).fill(7);
      const result = verifier.verify(command);
      expect(rejectedWith(result)).toBe(RejectionReason.MALFORMED_SIGNATURE);
    });

    it('reports invalid_signature for a tampered command, ahead of its missing nonce', () => {
      const { verifier, signer } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand(), { nonce: '' });
      command.targetSeedId = 'seed-1';
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.INVALID_SIGNATURE);
    });

    it('reports invalid_signature for a signature made with another key of the ring', () => {
      const { verifier, signer } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand(), { keyId: 'k-old' });
      command.security!.keyId = 'k-new';
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.INVALID_SIGNATURE);
    });

    it('reports missing_timestamp for a validly signed command without issued_at', () => {
      const { verifier, signer } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      command.security!.issuedAt = undefined;
      expect(rejectedWith(verifier.verify(resign(signer, command)))).toBe(RejectionReason.MISSING_TIMESTAMP);
    });

    it('reports stale_command past the 60 s default window, and accepts at its edge', () => {
      const { verifier, signer, clock } = harness();
      const edge = signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'edge' }));
      const stale = signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'stale' }));
      clock.advance(60_000);
      expect(verifier.verify(edge).ok).toBe(true);
      clock.advance(1);
      expect(rejectedWith(verifier.verify(stale))).toBe(RejectionReason.STALE_COMMAND);
    });

    it("uses the command's own shorter freshness window", () => {
      const { verifier, signer, clock } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      command.security!.freshnessWindow = durationFromMs(10_000);
      resign(signer, command);
      clock.advance(10_001);
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.STALE_COMMAND);
    });

    it("caps a command's longer freshness window at maxFreshnessWindowMs", () => {
      const { verifier, signer, clock } = harness({ maxFreshnessWindowMs: 30_000 });
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      command.security!.freshnessWindow = durationFromMs(3_600_000);
      resign(signer, command);
      clock.advance(30_001);
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.STALE_COMMAND);
    });

    it('reports future_command beyond the 5 s skew, and accepts at its edge', () => {
      const verifierClock = new FakeClock();
      const { verifier, signer } = harness({}, verifierClock);
      const producerClock = new FakeClock({ wallMs: verifierClock.wallMs() + 5_000 });
      const producer = new HmacSigner(signer.keyRing, { clock: producerClock });
      expect(verifier.verify(producer.sign(AdaptationCommandSchema, seedCommand())).ok).toBe(true);
      producerClock.advance(1);
      const ahead = producer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'cmd-2' }));
      expect(rejectedWith(verifier.verify(ahead))).toBe(RejectionReason.FUTURE_COMMAND);
    });

    it('reports missing_nonce for a validly signed, fresh command with an empty nonce', () => {
      const { verifier, signer } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand(), { nonce: '' });
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.MISSING_NONCE);
    });

    it('reports nonce_replayed for a replay within the TTL', () => {
      const { verifier, signer, clock } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      expect(verifier.verify(command).ok).toBe(true);
      clock.advance(30_000);
      expect(rejectedWith(verifier.verify(command))).toBe(RejectionReason.NONCE_REPLAYED);
      // Re-signing the same command id reuses its nonce, so that is a replay too.
      const again = signer.sign(AdaptationCommandSchema, seedCommand());
      expect(rejectedWith(verifier.verify(again))).toBe(RejectionReason.NONCE_REPLAYED);
    });

    it('rejects a replay at any later time: as replayed inside the window, as stale after it', () => {
      const { verifier, signer, clock, ledger } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      const bytes = toBinary(AdaptationCommandSchema, command);
      expect(verifier.verifyEncoded(bytes).ok).toBe(true);
      const seen: string[] = [];
      for (const stepMs of [1, 59_998, 1, 1, 239_998, 1, 1, 1_000_000]) {
        clock.advance(stepMs);
        verifier.maintenance();
        seen.push(rejectedWith(verifier.verifyEncoded(bytes)));
      }
      expect(seen).toEqual([
        'nonce_replayed', // 1 ms
        'nonce_replayed', // 59,999 ms
        'nonce_replayed', // 60,000 ms: the window's edge
        'stale_command', // 60,001 ms
        'stale_command', // 299,999 ms: nonce still held
        'stale_command', // 300,000 ms: nonce expired
        'stale_command',
        'stale_command',
      ]);
      expect(ledger.has(command.security!.nonce)).toBe(false);
    });

    it('does not let forged, stale or future commands consume a nonce', () => {
      const { verifier, signer, clock } = harness();
      const forged = signer.sign(AdaptationCommandSchema, seedCommand());
      forged.targetSeedId = 'seed-9';
      expect(rejectedWith(verifier.verify(forged))).toBe(RejectionReason.INVALID_SIGNATURE);

      const stale = signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'cmd-2' }));
      clock.advance(61_000);
      expect(rejectedWith(verifier.verify(stale))).toBe(RejectionReason.STALE_COMMAND);

      const aheadClock = new FakeClock({ wallMs: clock.wallMs() + 10_000 });
      const ahead = new HmacSigner(signer.keyRing, { clock: aheadClock }).sign(
        AdaptationCommandSchema,
        seedCommand({ commandId: 'cmd-3' }),
      );
      expect(rejectedWith(verifier.verify(ahead))).toBe(RejectionReason.FUTURE_COMMAND);

      for (const commandId of ['cmd-1', 'cmd-2', 'cmd-3']) {
        const genuine = signer.sign(AdaptationCommandSchema, seedCommand({ commandId }));
        expect(verifier.verify(genuine).ok).toBe(true);
      }
    });
  });

  describe('encoded input', () => {
    it('reports decode_failed for bytes that do not decode, without throwing', () => {
      const { verifier, sink } = harness();
      const result = verifier.verifyEncoded(Uint8Array.of(0x12, 0x05, 0x61));
      expect(rejectedWith(result)).toBe(RejectionReason.DECODE_FAILED);
      expect(!result.ok && result.detail).toContain(ErrorCode.DECODE_FAILED);
      const event = sink.events('command_rejected')[0];
      expect(event?.attributes).toMatchObject({ reason: 'decode_failed', command_id: '' });
    });

    it('reports decode_failed for an unknown field and for oversized input', () => {
      const { verifier, signer } = harness();
      const bytes = toBinary(AdaptationCommandSchema, signer.sign(AdaptationCommandSchema, seedCommand()));
      const withUnknown = Uint8Array.from([...bytes, 0xa8, 0x01, 0x01]); // field 21, varint 1
      expect(rejectedWith(verifier.verifyEncoded(withUnknown))).toBe(RejectionReason.DECODE_FAILED);
      const huge = new Uint8Array(4 * 1024 * 1024 + 1);
      const result = verifier.verifyEncoded(huge);
      expect(rejectedWith(result)).toBe(RejectionReason.DECODE_FAILED);
      expect(!result.ok && result.detail).toContain(ErrorCode.MESSAGE_TOO_LARGE);
    });

    it('rejects a bool byte 0x01 rewritten as 0x03 although it decodes to the same command', () => {
      const { verifier, signer } = harness();
      const command = signer.sign(
        AdaptationCommandSchema,
        seedCommand({ payload: { case: 'seedOperation', value: { resumeFlag: true } } }),
      );
      const bytes = toBinary(AdaptationCommandSchema, command);
      // seed_operation (field 10, LEN 2) holding resume_flag (field 8, varint 1).
      const at = indexOf(bytes, [0x52, 0x02, 0x40, 0x01]);
      expect(at).toBeGreaterThanOrEqual(0);
      const tampered = Uint8Array.from(bytes);
      tampered[at + 3] = 0x03;
      // Received bytes must be the canonical encoding of what they decode to.
      expect(rejectedWith(verifier.verifyEncoded(tampered))).toBe(RejectionReason.NON_CANONICAL_ENCODING);
      expect(verifier.verify(create(AdaptationCommandSchema, command)).ok).toBe(true);
    });

    it('rejects a repeated field that decodes to the same command', () => {
      const { verifier, signer } = harness();
      const bytes = toBinary(AdaptationCommandSchema, signer.sign(AdaptationCommandSchema, seedCommand()));
      const repeated = Uint8Array.from([...bytes, 0x08, 0x01]); // version = 1, again
      expect(rejectedWith(verifier.verifyEncoded(repeated))).toBe(RejectionReason.NON_CANONICAL_ENCODING);
    });

    describe('canonical framing', () => {
      const SECURITY = AdaptationCommandSchema.field.security.number;

      /** A signed command's bytes, with the security block's fields handed to `edit`. */
      function reframedSecurity(edit: (fields: WireField[]) => WireField[]): { bytes: Uint8Array; reframed: Uint8Array; h: Harness } {
        const h = harness();
        const bytes = toBinary(AdaptationCommandSchema, h.signer.sign(AdaptationCommandSchema, seedCommand()));
        const fields = readFields(bytes);
        const at = fields.findIndex((f) => f.number === SECURITY);
        fields[at] = withValue(fields[at]!, writeFields(edit(readFields(fields[at]!.value))));
        return { bytes, reframed: writeFields(fields), h };
      }

      function expectRejected(h: Harness, bytes: Uint8Array, reason: RejectionReason): void {
        const result = h.verifier.verifyEncoded(bytes);
        expect(rejectedWith(result)).toBe(reason);
        const events = h.sink.packets.flatMap((p) => p.events);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({ description: 'command_rejected', level: TelemetryLevel.CRITICAL, attributes: { reason } });
        expect(h.sink.packets[0]!.priority).toBe(MessagePriority.CRITICAL);
      }

      it('rejects a command whose signature field was moved to the end of the security block', () => {
        const { reframed, h } = reframedSecurity((fields) => [...fields.slice(1), fields[0]!]);
        expectRejected(h, reframed, RejectionReason.NON_CANONICAL_ENCODING);
      });

      it('rejects a non-minimal varint in the security block tag', () => {
        const h = harness();
        const bytes = toBinary(AdaptationCommandSchema, h.signer.sign(AdaptationCommandSchema, seedCommand()));
        const fields = readFields(bytes).map((f) => (f.number === SECURITY ? { ...f, tag: padVarint(f.tag) } : f));
        expectRejected(h, writeFields(fields), RejectionReason.NON_CANONICAL_ENCODING);
      });

      it('rejects a non-minimal varint in the security block length', () => {
        const h = harness();
        const bytes = toBinary(AdaptationCommandSchema, h.signer.sign(AdaptationCommandSchema, seedCommand()));
        const fields = readFields(bytes).map((f) => (f.number === SECURITY ? { ...f, length: padVarint(f.length!) } : f));
        expectRejected(h, writeFields(fields), RejectionReason.NON_CANONICAL_ENCODING);
      });

      it('rejects a non-minimal varint in the signature tag or length', () => {
        for (const part of ['tag', 'length'] as const) {
          const { reframed, h } = reframedSecurity(([signature, ...rest]) => [
            { ...signature!, [part]: padVarint(signature![part]!) },
            ...rest,
          ]);
          expectRejected(h, reframed, RejectionReason.NON_CANONICAL_ENCODING);
        }
      });

      it('rejects a duplicated security field (nonce written twice)', () => {
        const { reframed, h } = reframedSecurity((fields) => [...fields, fields.find((f) => f.number === 2)!]);
        expectRejected(h, reframed, RejectionReason.NON_CANONICAL_ENCODING);
      });

      it('rejects trailing bytes: a repeated field, or bytes that do not decode', () => {
        const h = harness();
        const bytes = toBinary(AdaptationCommandSchema, h.signer.sign(AdaptationCommandSchema, seedCommand()));
        const commandId = writeFields(readFields(bytes).filter((f) => f.number === 2));
        expectRejected(h, Uint8Array.from([...bytes, ...commandId]), RejectionReason.NON_CANONICAL_ENCODING);
        const other = harness();
        expectRejected(other, Uint8Array.from([...bytes, 0x00]), RejectionReason.DECODE_FAILED);
      });

      it('rejects any single-byte change of a signed command (property)', () => {
        fc.assert(
          fc.property(commandArbitrary, fc.nat(), fc.integer({ min: 1, max: 255 }), (fields, at, xor) => {
            const { signer, clock } = harness();
            const bytes = toBinary(AdaptationCommandSchema, signer.sign(AdaptationCommandSchema, fields));
            const changed = Uint8Array.from(bytes);
            changed[at % bytes.length]! ^= xor;
            expect(harness({}, clock).verifier.verifyEncoded(changed).ok).toBe(false);
          }),
          { numRuns: 300 },
        );
      });

      it('rejects any re-framing of a signed command, at the top level or inside the security block (property)', () => {
        fc.assert(
          fc.property(commandArbitrary, reframingArbitrary, fc.boolean(), (fields, reframing, inSecurity) => {
            const { signer, clock } = harness();
            const bytes = toBinary(AdaptationCommandSchema, signer.sign(AdaptationCommandSchema, fields));
            const reframed = reframe(bytes, reframing, inSecurity ? SECURITY : undefined);
            fc.pre(!equalBytes(reframed, bytes));
            const result = harness({}, clock).verifier.verifyEncoded(reframed);
            expect(result.ok).toBe(false);
          }),
          { numRuns: 500 },
        );
      });
    });

    it('reports non_canonical_encoding when the security block occurs twice', () => {
      const { verifier, signer } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand());
      const bytes = toBinary(AdaptationCommandSchema, command);
      const security = toBinary(AdaptationCommandSchema, create(AdaptationCommandSchema, { security: command.security }));
      expect(rejectedWith(verifier.verifyEncoded(Uint8Array.from([...bytes, ...security])))).toBe(RejectionReason.NON_CANONICAL_ENCODING);
    });

    it('rejects every single-bit flip of a signed command (property)', () => {
      fc.assert(
        fc.property(commandArbitrary, fc.nat(), (fields, bitSeed) => {
          const { verifier, signer, clock } = harness();
          const bytes = toBinary(AdaptationCommandSchema, signer.sign(AdaptationCommandSchema, fields));
          expect(verifier.verifyEncoded(bytes).ok).toBe(true);

          const fresh = harness({}, clock).verifier; // a fresh ledger: a replay must not mask a flip
          const bit = bitSeed % (bytes.length * 8);
          const flipped = Uint8Array.from(bytes);
          flipped[bit >> 3]! ^= 1 << (bit & 7);
          const result = fresh.verifyEncoded(flipped);
          expect(result.ok).toBe(false);
        }),
        { numRuns: 300 },
      );
    });

    it('rejects every single-bit flip of a few signed commands (exhaustive)', () => {
      const samples = fc.sample(commandArbitrary, { numRuns: 3, seed: 42 });
      for (const fields of samples) {
        const { verifier, signer, clock } = harness();
        const bytes = toBinary(AdaptationCommandSchema, signer.sign(AdaptationCommandSchema, fields));
        const fresh = harness({}, clock).verifier;
        const accepted: number[] = [];
        for (let bit = 0; bit < bytes.length * 8; bit += 1) {
          const flipped = Uint8Array.from(bytes);
          flipped[bit >> 3]! ^= 1 << (bit & 7);
          if (fresh.verifyEncoded(flipped).ok) accepted.push(bit);
        }
        expect(accepted).toEqual([]);
        expect(verifier.verifyEncoded(bytes).ok).toBe(true);
      }
    });
  });

  describe('key rotation', () => {
    it('accepts commands signed with either key during rotation and rejects an unknown key id', () => {
      const clock = new FakeClock();
      const { verifier } = harness({}, clock);
      const oldProducer = new HmacSigner(new KeyRing([{ keyId: 'k-old', secret: SECRET_OLD }]), {
        clock,
      });
      const newProducer = new HmacSigner(
        new KeyRing([
          { keyId: 'k-new', secret: SECRET_NEW },
          { keyId: 'k-old', secret: SECRET_OLD },
        ]),
        { clock },
      );
      const fromOld = oldProducer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'a' }));
      const fromNew = newProducer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'b' }));
      expect(fromOld.security?.keyId).toBe('k-old');
      expect(fromNew.security?.keyId).toBe('k-new');
      expect(verifier.verify(fromOld).ok).toBe(true);
      expect(verifier.verify(fromNew).ok).toBe(true);

      // Rotation finished: the old key is dropped and its commands are refused.
      const rotated = new CommandVerifier({
        signer: new HmacSigner(new KeyRing([{ keyId: 'k-new', secret: SECRET_NEW }]), { clock }),
        ledger: new NonceLedger({ clock }),
        sink: new MemoryTelemetrySink(),
        source: 'kasmina',
        clock,
      });
      const late = oldProducer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'c' }));
      expect(rejectedWith(rotated.verify(late))).toBe(RejectionReason.UNKNOWN_KEY_ID);
    });
  });

  describe('telemetry and counters', () => {
    it('emits exactly one CRITICAL command_rejected packet per rejection', () => {
      const { verifier, signer, sink } = harness();
      const command = signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'cmd-42' }));
      command.targetSeedId = 'seed-forged';
      const result = verifier.verify(command);
      expect(rejectedWith(result)).toBe('invalid_signature');

      expect(sink.packets).toHaveLength(1);
      const packet = sink.packets[0]!;
      expect(packet.sourceSubsystem).toBe('kasmina');
      expect(packet.priority).toBe(MessagePriority.CRITICAL);
      expect(packet.level).toBe(TelemetryLevel.CRITICAL);
      expect(packet.trainingRunId).toBe('run-7');
      expect(packet.events).toHaveLength(1);
      const event = packet.events[0]!;
      expect(event.description).toBe('command_rejected');
      expect(event.level).toBe(TelemetryLevel.CRITICAL);
      expect(event.attributes).toMatchObject({
        reason: 'invalid_signature',
        command_id: 'cmd-42',
        key_id: 'k-new',
        training_run_id: 'run-7',
      });
    });

    it('emits a CRITICAL packet for every reason', () => {
      const { verifier, signer, sink } = harness();
      verifier.verify(seedCommand());
      verifier.verifyEncoded(Uint8Array.of(0xff));
      const accepted = signer.sign(AdaptationCommandSchema, seedCommand());
      verifier.verify(accepted);
      verifier.verify(accepted);
      expect(sink.packets.map((p) => p.events[0]?.attributes['reason'])).toEqual(['missing_security', 'decode_failed', 'nonce_replayed']);
      for (const packet of sink.packets) {
        expect(packet.priority).toBe(MessagePriority.CRITICAL);
        expect(packet.events[0]?.level).toBe(TelemetryLevel.CRITICAL);
      }
    });

    it('clips command-supplied attribute values', () => {
      const { verifier, sink } = harness();
      verifier.verify(seedCommand({ commandId: 'x'.repeat(10_000) }));
      const commandId = sink.events('command_rejected')[0]?.attributes['command_id'] ?? '';
      expect(commandId.length).toBeLessThanOrEqual(130);
    });

    it('counts accepted and rejected commands by reason', () => {
      const { verifier, signer } = harness();
      verifier.verify(signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'a' })));
      verifier.verify(signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'b' })));
      verifier.verify(seedCommand());
      verifier.verify(seedCommand());
      verifier.verify(signer.sign(AdaptationCommandSchema, seedCommand({ commandId: 'a' })));
      const snapshot = verifier.snapshot();
      expect(snapshot.acceptedTotal).toBe(2);
      expect(snapshot.rejectedTotal).toBe(3);
      expect(snapshot.rejectionsByReason).toMatchObject({
        missing_security: 2,
        nonce_replayed: 1,
        invalid_signature: 0,
      });
      expect(Object.keys(snapshot.rejectionsByReason).sort()).toEqual(Object.values(RejectionReason).sort());
    });

    it('reports verification latency over a bounded window', () => {
      const fake = new FakeClock();
      let monotonicMs = 0;
      const steps = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
      let call = 0;
      // Each verification reads the monotonic clock twice: start, then end.
      const clock: Clock = {
        wallMs: () => fake.wallMs(),
        monotonicMs: () => {
          const reading = monotonicMs;
          if (call % 2 === 0) monotonicMs += steps[(call / 2) % steps.length]!;
          call += 1;
          return reading;
        },
      };
      const ring = new KeyRing([{ keyId: 'k', secret: SECRET_NEW }]);
      const verifier = new CommandVerifier({
        signer: new HmacSigner(ring, { clock: fake }),
        ledger: new NonceLedger({ clock: fake }),
        sink: new MemoryTelemetrySink(),
        source: 'kasmina',
        clock,
        latencyWindowSize: 5,
      });
      expect(verifier.snapshot().latency).toEqual({ lastMs: 0, p50Ms: 0, p95Ms: 0, samples: 0 });
      for (let i = 0; i < 10; i += 1) verifier.verify(seedCommand());
      // The window holds the last five latencies, 6..10 ms; p95 interpolates between 9 and 10.
      const latency = verifier.snapshot().latency;
      expect(latency).toMatchObject({ lastMs: 10, p50Ms: 8, samples: 5 });
      expect(latency.p95Ms).toBeCloseTo(9.8, 10);
    });

    it('exposes the reference metrics prefixed with its source', () => {
      const { signer, clock } = harness();
      const ledger = new NonceLedger({ clock });
      const verifier = new CommandVerifier({
        signer,
        ledger,
        sink: new MemoryTelemetrySink(),
        source: 'tamiyo',
        clock,
      });
      verifier.verify(signer.sign(AdaptationCommandSchema, seedCommand()));
      verifier.verify(seedCommand());
      const metrics = verifier.metrics();
      const find = (name: string, attributes?: Record<string, string>) =>
        metrics.find((m) => m.name === name && JSON.stringify(m.attributes ?? {}) === JSON.stringify(attributes ?? {}));
      expect(find('tamiyo.command_verifier.accepted_total')?.value).toBe(1);
      expect(find('tamiyo.command_verifier.rejections_total', { reason: 'missing_security' })?.value).toBe(1);
      expect(metrics.filter((m) => m.name === 'tamiyo.command_verifier.rejections_total')).toHaveLength(
        Object.values(RejectionReason).length,
      );
      expect(find('tamiyo.command_verifier.validation_latency_ms', { stat: 'p95' })?.unit).toBe('ms');
      expect(find('tamiyo.nonce_ledger.size')?.value).toBe(1);
      expect(find('tamiyo.nonce_ledger.evictions_total')?.value).toBe(0);
      expect(find('tamiyo.nonce_ledger.ttl_seconds')?.value).toBe(300);
      expect(metrics.every((m) => m.name.startsWith('tamiyo.'))).toBe(true);
    });

    it('returns counters and the ledger snapshot', () => {
      const { verifier, signer } = harness();
      verifier.verify(signer.sign(AdaptationCommandSchema, seedCommand()));
      expect(verifier.snapshot()).toEqual({
        acceptedTotal: 1,
        rejectedTotal: 0,
        rejectionsByReason: Object.fromEntries(Object.values(RejectionReason).map((r) => [r, 0])),
        latency: { lastMs: 0, p50Ms: 0, p95Ms: 0, samples: 1 },
        ledger: { size: 1, evictionsTotal: 0, purgedTotal: 0, ttlSeconds: 300, maxEntries: 10_000 },
      });
    });

    it('purges expired nonces on maintenance()', () => {
      const { verifier, signer, clock, ledger } = harness();
      verifier.verify(signer.sign(AdaptationCommandSchema, seedCommand()));
      clock.advance(300_000);
      expect(ledger.size).toBe(1);
      expect(verifier.maintenance()).toBe(1);
      expect(verifier.snapshot().ledger).toMatchObject({ size: 0, purgedTotal: 1 });
    });
  });

  describe('configuration', () => {
    it('refuses a ledger TTL shorter than the freshness window plus the future skew', () => {
      const clock = new FakeClock();
      const { signer } = harness({}, clock);
      let caught: unknown;
      try {
        new CommandVerifier({
          signer,
          ledger: new NonceLedger({ clock, ttlSeconds: 60 }),
          sink: new MemoryTelemetrySink(),
          source: 'kasmina',
          clock,
        });
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((caught as { details: Record<string, unknown> }).details['field']).toBe('ledger');
    });

    it.each([
      [{ source: '' }, 'source'],
      [{ maxFreshnessWindowMs: 0 }, 'maxFreshnessWindowMs'],
      [{ futureSkewMs: -1 }, 'futureSkewMs'],
      [{ latencyWindowSize: 0 }, 'latencyWindowSize'],
    ])('refuses %j, naming the field', (overrides, field) => {
      let caught: unknown;
      try {
        harness(overrides);
      } catch (error) {
        caught = error;
      }
      expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((caught as { details: Record<string, unknown> }).details['field']).toBe(field);
    });
  });
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

function indexOf(haystack: Uint8Array, needle: readonly number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/** Any command (every field, oneof case and metadata block); the signer replaces `security`. */
const commandArbitrary = arbitraryMessage(AdaptationCommandSchema);
