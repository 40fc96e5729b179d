/**
 * Policy weights on the wire: the bytes of `PolicyUpdate.payload` and of policy
 * checkpoints, self-describing so a loader refuses a payload that does not fit before
 * touching the live policy (reference prototype-tamiyo-simic §8.6, §13). Format 1,
 * little-endian:
 *
 *     "ESPL" · u32 format version · u32 header bytes · header JSON
 *            · u32 weights bytes · weights blob · SHA-256 of everything before it (32 bytes)
 *
 * The header is `{"architecture": architectureOf(config), "version": …}`; the blob is
 * `tensor/weights-io`'s, variables under their logical names, float32. Any flipped or
 * missing byte is `TAMIYO_POLICY_INVALID`.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ErrorCode, EsperError, optionChecks, parsePersistedJson } from '../core/index.js';
import { decodeWeights, decodeWeightsFromBytes, encodeWeightsToBytes, seededRng, tf, type EncodedWeights } from '../tensor/index.js';
import { validateGnnConfig, type GnnConfig } from './gnn-config.js';
import { TamiyoGnn } from './gnn.js';
import { NODE_TYPES, type NodeType } from './graph-types.js';

/** `PolicyArchitecture.id` of the GNN policy. */
export const POLICY_ARCHITECTURE_ID = 'tamiyo_gnn';
/** `PolicyArchitecture.version` of the GNN policy (bump when the layout of weights changes). */
export const POLICY_ARCHITECTURE_VERSION = 1;

const MAGIC = Uint8Array.from([0x45, 0x53, 0x50, 0x4c]); // "ESPL"
const FORMAT_VERSION = 1;
const DIGEST_BYTES = 32;
/** magic + format version + header length + weights length + digest. */
const FRAME_BYTES = 4 + 4 + 4 + 4 + DIGEST_BYTES;
const MAX_VERSION_CHARS = 256;

/** Metadata stored with the weights. */
export interface PolicyMeta {
  /** Policy version label (`PolicyUpdate.tamiyo_policy_version`), 1–256 chars. */
  readonly version: string;
  /**
   * How often the policy decides when it acts by sampling (a learned policy): at every k-th
   * epoch end. Part of how it was learned, so it travels with the weights.
   * @default 1 (absent: every epoch)
   */
  readonly decisionEveryEpochs?: number;
}

/** Header of a serialised policy. */
export interface PolicyHeader {
  /** {@link architectureOf} the config the weights belong to. */
  readonly architecture: string;
  readonly version: string;
  /** See {@link PolicyMeta.decisionEveryEpochs}. */
  readonly decisionEveryEpochs?: number;
}

/** A policy read back by {@link loadPolicy}; the caller owns (disposes) `gnn`. */
export interface LoadedPolicy {
  readonly gnn: TamiyoGnn;
  readonly version: string;
  readonly architecture: string;
  /** {@link policyChecksum} of the bytes loaded. */
  readonly checksum: string;
  /** See {@link PolicyMeta.decisionEveryEpochs} (undefined when the file does not say). */
  readonly decisionEveryEpochs?: number;
}

function invalid(source: string, message: string, details: Record<string, string | number> = {}, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, `policy weights ${source}: ${message}`, {
    details: { ...details, path: source },
    cause,
  });
}

/** SHA-256 of `bytes` (the `PolicyUpdate.checksum` of a payload). */
export function policyDigest(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/** SHA-256 of `bytes`, lower-case hex. */
export function policyChecksum(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** JSON with object keys sorted at every level (arrays keep their order). */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The architecture string: canonical JSON (sorted keys) of the id, version and every
 * {@link GnnConfig} field, relations in config order (their order fixes the weight layout).
 */
export function architectureOf(config: GnnConfig): string {
  return canonicalJson({
    id: POLICY_ARCHITECTURE_ID,
    version: POLICY_ARCHITECTURE_VERSION,
    config: {
      relations: config.relations.map((r) => ({ src: r.src, name: r.name, dst: r.dst })),
      nodeDims: Object.fromEntries(NODE_TYPES.map((t) => [t, config.nodeDims[t]])),
      hidden: config.hidden,
      gatHidden: config.gatHidden,
      heads: config.heads,
      actionClasses: config.actionClasses,
      blendClasses: config.blendClasses,
      riskClasses: config.riskClasses,
      paramVector: config.paramVector,
      scheduleOutputs: config.scheduleOutputs,
    },
  });
}

const int = z.number().int();

/** The architecture string's JSON: id, version and the config's fields. */
const ArchitectureSchema = z.strictObject({
  id: z.literal(POLICY_ARCHITECTURE_ID),
  version: z.literal(POLICY_ARCHITECTURE_VERSION),
  config: z.strictObject({
    relations: z.array(z.strictObject({ src: z.enum(NODE_TYPES), name: z.string(), dst: z.enum(NODE_TYPES) })),
    nodeDims: z.strictObject(Object.fromEntries(NODE_TYPES.map((t) => [t, int])) as Record<NodeType, typeof int>),
    hidden: int,
    gatHidden: int,
    heads: int,
    actionClasses: int,
    blendClasses: int,
    riskClasses: int,
    paramVector: int,
    scheduleOutputs: int,
  }),
});

/** The header JSON of a serialised policy. */
const HeaderSchema = z.strictObject({
  architecture: z.string(),
  version: z.string().min(1).max(MAX_VERSION_CHARS),
  decisionEveryEpochs: z.number().int().min(1).max(1_000_000).optional(),
});

/**
 * Parses an architecture string back into a validated config.
 * @param source Where the string was read from, named in errors. @default 'architecture'
 * @throws EsperError TAMIYO_POLICY_INVALID when it is not one (or not in canonical form).
 */
export function configOfArchitecture(architecture: string, source = 'architecture'): GnnConfig {
  const { config } = parsePersistedJson(ArchitectureSchema, architecture, {
    what: `policy architecture of ${source}`,
    details: { path: source },
    code: ErrorCode.TAMIYO_POLICY_INVALID,
  });
  try {
    validateGnnConfig(config);
  } catch (error) {
    throw invalid(source, 'architecture config is invalid', {}, error);
  }
  if (architectureOf(config) !== architecture) throw invalid(source, 'architecture is not in canonical form');
  return config;
}

/**
 * Frames a header and already-encoded weights (low level; {@link serialisePolicy} is the
 * usual entry). Exposed for tools that produce payloads from saved tensors.
 */
export function encodePolicyBytes(header: PolicyHeader, weights: EncodedWeights): Uint8Array {
  const headerBytes = new TextEncoder().encode(
    JSON.stringify({
      architecture: header.architecture,
      version: header.version,
      ...(header.decisionEveryEpochs === undefined ? {} : { decisionEveryEpochs: header.decisionEveryEpochs }),
    }),
  );
  const blob = encodeWeightsToBytes(weights);
  const out = new Uint8Array(FRAME_BYTES + headerBytes.byteLength + blob.byteLength);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, headerBytes.byteLength, true);
  out.set(headerBytes, 12);
  const weightsAt = 12 + headerBytes.byteLength;
  view.setUint32(weightsAt, blob.byteLength, true);
  out.set(blob, weightsAt + 4);
  const body = weightsAt + 4 + blob.byteLength;
  out.set(policyDigest(out.subarray(0, body)), body);
  return out;
}

/** Serialises `gnn`'s weights with its architecture and `meta.version`. */
export function serialisePolicy(gnn: TamiyoGnn, meta: PolicyMeta): Uint8Array {
  if (typeof meta.version !== 'string' || meta.version.length === 0 || meta.version.length > MAX_VERSION_CHARS) {
    optionChecks('serialisePolicy').fail('version', `a string of 1–${MAX_VERSION_CHARS} characters`, meta.version);
  }
  const variables = [...gnn.variablesByName()];
  const specs: tf.io.WeightsManifestEntry[] = [];
  const data = new Uint8Array(variables.reduce((n, [, v]) => n + v.size * 4, 0));
  let offset = 0;
  for (const [name, v] of variables) {
    specs.push({ name, shape: [...v.shape], dtype: 'float32' });
    const values = v.dataSync() as Float32Array;
    data.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), offset);
    offset += values.byteLength;
  }
  const every = meta.decisionEveryEpochs;
  if (every !== undefined) optionChecks('serialisePolicy').integer('decisionEveryEpochs', every, { min: 1, max: 1_000_000 });
  return encodePolicyBytes(
    { architecture: architectureOf(gnn.config), version: meta.version, ...(every === undefined ? {} : { decisionEveryEpochs: every }) },
    { specs, data },
  );
}

/**
 * Splits and verifies the frame; returns the header and the weights blob.
 * @param source Where the bytes came from (a file, an update's payload), named in errors. @default 'payload'
 * @throws EsperError TAMIYO_POLICY_INVALID on a bad magic, truncation, corruption or header.
 */
export function readPolicyFrame(bytes: Uint8Array, source = 'payload'): { header: PolicyHeader; weights: Uint8Array } {
  if (!(bytes instanceof Uint8Array)) throw invalid(source, 'is not bytes');
  if (bytes.byteLength < FRAME_BYTES) throw invalid(source, 'is truncated', { bytes: bytes.byteLength });
  if (!MAGIC.every((b, i) => bytes[i] === b)) throw invalid(source, 'is not a Tamiyo policy (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint32(4, true);
  if (format !== FORMAT_VERSION) throw invalid(source, `has unsupported format version ${format}`, { format });
  const headerBytes = view.getUint32(8, true);
  if (12 + headerBytes + 4 + DIGEST_BYTES > bytes.byteLength) throw invalid(source, 'is truncated (header)', { bytes: bytes.byteLength });
  const weightsAt = 12 + headerBytes;
  const weightsBytes = view.getUint32(weightsAt, true);
  const body = weightsAt + 4 + weightsBytes;
  if (body + DIGEST_BYTES !== bytes.byteLength) {
    throw invalid(source, `is ${bytes.byteLength} bytes, its frame says ${body + DIGEST_BYTES}`, { bytes: bytes.byteLength });
  }
  const digest = policyDigest(bytes.subarray(0, body));
  if (!digest.every((b, i) => bytes[body + i] === b)) throw invalid(source, 'digest mismatch (corrupted)');
  const header = parsePersistedJson(HeaderSchema, bytes.subarray(12, weightsAt), {
    what: `policy weights header of ${source}`,
    details: { path: source },
    code: ErrorCode.TAMIYO_POLICY_INVALID,
  });
  return { header, weights: bytes.subarray(weightsAt + 4, body) };
}

/**
 * Reads a policy written by {@link serialisePolicy} into a fresh {@link TamiyoGnn}; nothing
 * is left allocated when it throws.
 * @param source Where the bytes came from, named in errors. @default 'payload'
 * @throws EsperError TAMIYO_POLICY_INVALID on a bad magic, truncation or corruption, an
 *   architecture that differs from `expectedConfig`'s, a missing, extra or misshapen
 *   variable, or a non-finite weight.
 */
export function loadPolicy(bytes: Uint8Array, expectedConfig?: GnnConfig, source = 'payload'): LoadedPolicy {
  const { header, weights } = readPolicyFrame(bytes, source);
  if (expectedConfig !== undefined && architectureOf(expectedConfig) !== header.architecture) {
    throw invalid(source, 'architecture mismatch', { version: header.version });
  }
  const config = configOfArchitecture(header.architecture, source);
  let encoded: EncodedWeights;
  try {
    encoded = decodeWeightsFromBytes(weights);
  } catch (error) {
    throw invalid(source, 'weights blob is invalid', {}, error);
  }
  const gnn = new TamiyoGnn(config, seededRng(0));
  try {
    restoreByName(gnn, encoded, source);
  } catch (error) {
    gnn.dispose();
    throw error;
  }
  return {
    gnn,
    version: header.version,
    architecture: header.architecture,
    checksum: policyChecksum(bytes),
    ...(header.decisionEveryEpochs === undefined ? {} : { decisionEveryEpochs: header.decisionEveryEpochs }),
  };
}

function restoreByName(gnn: TamiyoGnn, encoded: EncodedWeights, source: string): void {
  const variables = gnn.variablesByName();
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const spec of encoded.specs) {
    const v = variables.get(spec.name);
    if (seen.has(spec.name)) problems.push(`duplicate '${spec.name}'`);
    seen.add(spec.name);
    if (v === undefined) problems.push(`unexpected '${spec.name}'`);
    else if (spec.dtype !== 'float32' || !tf.util.arraysEqual(v.shape, spec.shape)) {
      problems.push(`'${spec.name}' is float32[${v.shape.join(',')}], payload has ${spec.dtype}[${spec.shape.join(',')}]`);
    }
  }
  for (const name of variables.keys()) if (!seen.has(name)) problems.push(`missing '${name}'`);
  if (problems.length > 0) {
    throw invalid(source, `weights do not fit the architecture: ${problems.slice(0, 5).join('; ')}`, { problems: problems.length });
  }
  const { data } = encoded;
  // A copy, not `slice()`: a Node Buffer's slice is a view at the same (unaligned) offset.
  const aligned = data.byteOffset % 4 === 0 ? data : new Uint8Array(data);
  const floats = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  for (let i = 0; i < floats.length; i += 1) {
    if (!Number.isFinite(floats[i])) throw invalid(source, `weight ${i} is not finite`, { index: i });
  }
  const tensors = decodeWeights(encoded);
  try {
    for (const [name, tensor] of Object.entries(tensors)) variables.get(name)?.assign(tensor);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
