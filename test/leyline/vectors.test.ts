import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRegistry, equals, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { durationMs, timestampMs } from '@bufbuild/protobuf/wkt';
import {
  AdaptationCommandSchema,
  BSDSSchema,
  canonicalBytes,
  file_esper_leyline_v1_blueprint,
  file_esper_leyline_v1_bus,
  file_esper_leyline_v1_command,
  file_esper_leyline_v1_emergency,
  file_esper_leyline_v1_enums,
  file_esper_leyline_v1_field_report,
  file_esper_leyline_v1_kernel,
  file_esper_leyline_v1_limits,
  file_esper_leyline_v1_policy,
  file_esper_leyline_v1_security,
  file_esper_leyline_v1_state,
  file_esper_leyline_v1_telemetry,
  PolicyUpdateSchema,
  type CommandSecurity,
  type SignedMessage,
  type SignedMessageSchema,
} from '../../src/leyline/index.js';
import { FakeClock } from '../../src/core/index.js';
import { HmacSigner } from '../../src/security/signer.js';
import {
  buildTypeScriptVectors,
  PYTHON_VECTORS_DIR,
  readVectors,
  renderVector,
  TYPESCRIPT_VECTORS_DIR,
  vectorKeyRing,
  type LeylineVector,
} from '../../scripts/make-ts-vectors.js';

const registry = createRegistry(
  file_esper_leyline_v1_blueprint,
  file_esper_leyline_v1_bus,
  file_esper_leyline_v1_command,
  file_esper_leyline_v1_emergency,
  file_esper_leyline_v1_enums,
  file_esper_leyline_v1_field_report,
  file_esper_leyline_v1_kernel,
  file_esper_leyline_v1_limits,
  file_esper_leyline_v1_policy,
  file_esper_leyline_v1_security,
  file_esper_leyline_v1_state,
  file_esper_leyline_v1_telemetry,
);

const SIGNED_SCHEMAS: ReadonlyMap<string, SignedMessageSchema> = new Map<string, SignedMessageSchema>([
  [AdaptationCommandSchema.typeName, AdaptationCommandSchema],
  [PolicyUpdateSchema.typeName, PolicyUpdateSchema],
  [BSDSSchema.typeName, BSDSSchema],
]);

function schemaOf(vector: LeylineVector): DescMessage {
  const schema = registry.getMessage(vector.type);
  if (schema === undefined) throw new Error(`${vector.name}: unknown type ${vector.type}`);
  return schema;
}

function bytesOf(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function flipBit(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] as number) ^ 0x01;
  return copy;
}

const signer = new HmacSigner(vectorKeyRing());
const pythonVectors = readVectors(PYTHON_VECTORS_DIR);
const typescriptVectors = readVectors(TYPESCRIPT_VECTORS_DIR);
const pythonByName = new Map(pythonVectors.map((v) => [v.name, v]));

function roundTripHex(vector: LeylineVector): string {
  const schema = schemaOf(vector);
  return hexOf(toBinary(schema, fromBinary(schema, bytesOf(vector.hex))));
}

/** Decodes a signed vector and checks its signature the way a verifier would. */
function expectSignatureVerifies(vector: LeylineVector): void {
  const schema = SIGNED_SCHEMAS.get(vector.type);
  if (schema === undefined) throw new Error(`${vector.name}: ${vector.type} is not a signed type`);
  const message = fromBinary(schema, bytesOf(vector.hex)) as SignedMessage;
  const security = message.security as CommandSecurity;
  expect(security.keyId).toBe(vector.key_id);
  expect(hexOf(security.signature)).toBe(vector.signature_hex);

  const canonical = canonicalBytes(schema, message);
  expect(signer.macMatches(security.keyId, canonical, security.signature)).toBe(true);
  expect(signer.macMatches(security.keyId, canonical, flipBit(security.signature, 31))).toBe(false);
  expect(signer.macMatches(security.keyId, flipBit(canonical, 0), security.signature)).toBe(false);
  expect(signer.macMatches(security.keyId, flipBit(canonical, canonical.length - 1), security.signature)).toBe(false);
  const otherKey = security.keyId === 'vector-test' ? 'vector-test-next' : 'vector-test';
  expect(signer.macMatches(otherKey, canonical, security.signature)).toBe(false);
}

describe('Python-made Leyline vectors', () => {
  it('cover every signed type, every command payload case and the unsigned bus messages', () => {
    const types = new Set(pythonVectors.map((v) => v.type));
    for (const type of [
      'esper.leyline.v1.AdaptationCommand',
      'esper.leyline.v1.PolicyUpdate',
      'esper.leyline.v1.BSDS',
      'esper.leyline.v1.SystemStatePacket',
      'esper.leyline.v1.FieldReport',
      'esper.leyline.v1.TelemetryPacket',
      'esper.leyline.v1.BusEnvelope',
    ]) {
      expect(types, type).toContain(type);
    }
    const cases = new Set(
      pythonVectors
        .filter((v) => v.type === AdaptationCommandSchema.typeName)
        .map((v) => fromBinary(AdaptationCommandSchema, bytesOf(v.hex)).payload.case),
    );
    expect([...cases].sort()).toEqual(
      ['circuitBreaker', 'emergency', 'optimizerAdjustment', 'rollback', 'seedOperation', undefined].sort(),
    );
  });

  it.each(pythonVectors.filter((v) => v.known_divergence === undefined).map((v) => [v.name, v] as const))(
    're-encodes %s byte for byte',
    (_name, vector) => {
      expect(roundTripHex(vector)).toBe(vector.hex);
    },
  );

  it.each(pythonVectors.filter((v) => v.signed).map((v) => [v.name, v] as const))(
    'verifies the Python-made signature of %s and rejects any flipped bit',
    (_name, vector) => {
      expectSignatureVerifies(vector);
    },
  );

  it.each(pythonVectors.filter((v) => v.signed).map((v) => [v.name, v] as const))(
    're-signs %s with HmacSigner to the very same bytes',
    (_name, vector) => {
      const schema = SIGNED_SCHEMAS.get(vector.type) as SignedMessageSchema;
      const message = fromBinary(schema, bytesOf(vector.hex)) as SignedMessage;
      const security = message.security as CommandSecurity;
      const clock = new FakeClock({ wallMs: timestampMs(security.issuedAt ?? expect.fail('issuedAt')) });
      const freshnessWindowMs = durationMs(security.freshnessWindow ?? expect.fail('freshnessWindow'));
      const resigned = new HmacSigner(vectorKeyRing(), { clock, freshnessWindowMs }).sign(schema, message, {
        nonce: security.nonce,
        keyId: security.keyId,
      });
      expect(hexOf(toBinary(schema, resigned))).toBe(vector.hex);
    },
  );

  it.each(pythonVectors.filter((v) => v.known_divergence !== undefined).map((v) => [v.name, v] as const))(
    'documents known divergence %s: decoded messages are equal, bytes are not',
    (_name, vector) => {
      const schema = schemaOf(vector);
      const decoded = fromBinary(schema, bytesOf(vector.hex));
      const reencoded = toBinary(schema, decoded);
      expect(equals(schema, fromBinary(schema, reencoded), decoded)).toBe(true);
      // If this starts to fail, protobuf-es now matches Python: drop known_divergence.
      expect(hexOf(reencoded)).not.toBe(vector.hex);
    },
  );
});

describe('TypeScript-made Leyline vectors', () => {
  it('are exactly what buildTypeScriptVectors makes now (regenerate: npx tsx scripts/make-ts-vectors.ts)', () => {
    const built = buildTypeScriptVectors();
    const committed = readdirSync(TYPESCRIPT_VECTORS_DIR)
      .filter((file) => file.endsWith('.json'))
      .sort();
    expect(committed).toEqual(built.map((v) => `${v.name}.json`).sort());
    for (const vector of built) {
      expect(readFileSync(join(TYPESCRIPT_VECTORS_DIR, `${vector.name}.json`), 'utf8'), vector.name).toBe(renderVector(vector));
    }
  });

  it.each(typescriptVectors.map((v) => [v.name, v] as const))('re-encodes %s byte for byte', (_name, vector) => {
    expect(roundTripHex(vector)).toBe(vector.hex);
  });

  it.each(typescriptVectors.filter((v) => v.signed).map((v) => [v.name, v] as const))(
    'verifies the signature of %s and rejects any flipped bit',
    (_name, vector) => {
      expectSignatureVerifies(vector);
    },
  );

  it.each(typescriptVectors.map((v) => [v.name, v] as const))('encodes %s exactly as Python does', (name, vector) => {
    const python = pythonByName.get(name);
    expect(python, `no Python vector named ${name}`).toBeDefined();
    expect(vector.type).toBe(python?.type);
    expect(vector.hex).toBe(python?.hex);
    expect(vector.signature_hex).toBe(python?.signature_hex);
  });
});
