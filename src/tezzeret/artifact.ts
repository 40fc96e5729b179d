/**
 * The Tezzeret kernel-artifact byte format: one buffer holding everything needed to rebuild
 * a compiled seed module, so one SHA-256 (the artifact checksum) covers it all. Layout,
 * header fields and the order of checks: docs/artifacts.md. It stores Karn family
 * parameters and weights rather than a tfjs LayersModel topology, because seed modules are
 * Karn families (reference prototype-blueprint-pipeline §2.3, §10.2).
 */
import { z } from 'zod';
import { createHash } from 'node:crypto';
import { crc32c, ErrorCode, EsperError, parsePersistedJson } from '../core/index.js';
import { FamilyId } from '../karn/index.js';
import { ArtifactSiteSchema, type ArtifactSite } from './artifact-site.js';

/** ASCII magic at the start of every artifact. */
export const ARTIFACT_MAGIC = 'ESPR-ART';
/** Current artifact format version. */
export const ARTIFACT_FORMAT_VERSION = 1;
/** Bytes before the header: magic, version, header length, weights length, CRC-32C. */
export const ARTIFACT_PREFIX_BYTES = 24;

const MAGIC_BYTES = new TextEncoder().encode(ARTIFACT_MAGIC);

/** The guard spec: what the kernel accepts and returns (batch 1 shapes). */
export interface GuardSpec {
  /** Input shape at batch 1, `[1, ...site.shape]`. */
  readonly inputShape: readonly number[];
  /** Output shape at batch 1. */
  readonly outputShape: readonly number[];
  /** Element type of input and output. */
  readonly dtype: 'float32';
}

/** One stored variable, by its scope-relative name. */
export interface ArtifactVariable {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: 'float32' | 'int32' | 'bool';
}

/** The artifact header (serialised as canonical JSON). */
export interface ArtifactHeader {
  readonly blueprintId: string;
  readonly family: FamilyId;
  /** Validated blueprint parameters (keys sorted in the serialised form). */
  readonly parameters: Readonly<Record<string, number>>;
  /** The site the module was compiled for (`artifact-site.ts`). */
  readonly site: ArtifactSite;
  readonly guard: GuardSpec;
  /** The module's variables, in build order. */
  readonly variables: readonly ArtifactVariable[];
  /** Weight-initialisation seed used at compile time (weights are stored regardless). */
  readonly seed: number;
  /** ISO-8601 UTC time of compilation. */
  readonly compiledAt: string;
}

/** A decoded artifact: its header and the weights section bytes. */
export interface DecodedArtifact {
  readonly header: ArtifactHeader;
  readonly weights: Uint8Array;
}

const dims = z.array(z.number().int().nonnegative());
const HeaderSchema = z.strictObject({
  blueprintId: z.string().min(1),
  family: z.enum(Object.values(FamilyId) as [FamilyId, ...FamilyId[]]),
  parameters: z.record(z.string(), z.number().refine(Number.isFinite, 'must be finite')),
  site: ArtifactSiteSchema,
  guard: z.strictObject({ inputShape: dims, outputShape: dims, dtype: z.literal('float32') }),
  variables: z.array(z.strictObject({ name: z.string().min(1), shape: dims, dtype: z.enum(['float32', 'int32', 'bool']) })),
  seed: z.number().int(),
  compiledAt: z.string().min(1),
});

/** Throws-ready `TEZZERET_ARTIFACT_INVALID` error. */
export function artifactInvalid(message: string, details: Record<string, string | number | boolean> = {}, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.TEZZERET_ARTIFACT_INVALID, message, { details, cause });
}

/**
 * Canonical JSON: object keys sorted (recursively), no whitespace, JS number formatting.
 * Arrays keep their order. Used for the header and the guard digest.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
  }
  return value;
}

/** SHA-256 hex of `bytes`. */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Guard digest: SHA-256 hex of the canonical JSON of the guard spec. */
export function guardDigest(guard: GuardSpec): string {
  return sha256Hex(canonicalJson(guard));
}

/** Serialises a header and weights section into one artifact buffer (layout in the module comment). */
export function encodeArtifact(header: ArtifactHeader, weights: Uint8Array): Uint8Array {
  const headerBytes = new TextEncoder().encode(canonicalJson(header));
  const out = new Uint8Array(ARTIFACT_PREFIX_BYTES + headerBytes.byteLength + weights.byteLength);
  const view = new DataView(out.buffer);
  out.set(MAGIC_BYTES, 0);
  view.setUint32(8, ARTIFACT_FORMAT_VERSION, true);
  view.setUint32(12, headerBytes.byteLength, true);
  view.setUint32(16, weights.byteLength, true);
  out.set(headerBytes, ARTIFACT_PREFIX_BYTES);
  out.set(weights, ARTIFACT_PREFIX_BYTES + headerBytes.byteLength);
  view.setUint32(20, crc32c(out.subarray(ARTIFACT_PREFIX_BYTES)), true);
  return out;
}

/**
 * Parses and verifies an artifact buffer: magic, version, lengths, CRC-32C and the header
 * schema. Throws `TEZZERET_ARTIFACT_INVALID` (a `PersistedStateError` listing every bad path
 * when the header does not fit its schema). The weights section is returned unparsed.
 */
export function decodeArtifact(bytes: Uint8Array): DecodedArtifact {
  if (bytes.byteLength < ARTIFACT_PREFIX_BYTES) throw artifactInvalid('artifact is truncated (no prefix)', { bytes: bytes.byteLength });
  for (let i = 0; i < MAGIC_BYTES.byteLength; i += 1) {
    if (bytes[i] !== MAGIC_BYTES[i]) throw artifactInvalid(`not an Esper artifact (bad magic)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== ARTIFACT_FORMAT_VERSION) throw artifactInvalid(`unsupported artifact version ${version}`, { version });
  const headerLength = view.getUint32(12, true);
  const weightsLength = view.getUint32(16, true);
  const expected = ARTIFACT_PREFIX_BYTES + headerLength + weightsLength;
  if (bytes.byteLength !== expected) {
    throw artifactInvalid(`artifact is ${bytes.byteLength} bytes, its prefix declares ${expected}`, {
      bytes: bytes.byteLength,
      expectedBytes: expected,
    });
  }
  if (crc32c(bytes.subarray(ARTIFACT_PREFIX_BYTES)) !== view.getUint32(20, true))
    throw artifactInvalid('artifact checksum (CRC-32C) mismatch');
  const header = parsePersistedJson(HeaderSchema, bytes.subarray(ARTIFACT_PREFIX_BYTES, ARTIFACT_PREFIX_BYTES + headerLength), {
    code: ErrorCode.TEZZERET_ARTIFACT_INVALID,
    what: 'artifact header',
  });
  return { header, weights: bytes.slice(ARTIFACT_PREFIX_BYTES + headerLength) };
}
