/**
 * Policy weights on the wire: the bytes of `PolicyUpdate.payload` (Simic → Tamiyo) and of
 * policy checkpoints. Self-describing, so a loader can refuse a payload that does not fit
 * before touching the live policy (reference prototype-tamiyo-simic §8.6, §13).
 *
 * Byte format (little-endian), format version 1:
 *
 *     "ESPL" · u32 format version · u32 header bytes · header JSON
 *            · u32 weights bytes · weights blob · SHA-256 of everything before it (32 bytes)
 *
 * - header JSON: `{"architecture": architectureOf(config), "version": "<policy version>"}`;
 * - weights blob: `tensor/weights-io` `encodeWeightsToBytes` (its own magic, specs with
 *   name/shape/dtype per variable, crc32c over the data), variables under their logical
 *   names (`TamiyoGnn.variablesByName`), float32.
 *
 * The trailing digest makes every flipped or missing byte a `TAMIYO_POLICY_INVALID`
 * instead of a silently different policy; `PolicyUpdate.checksum` is
 * {@link policyDigest} of the whole payload, checked by the caller against the message.
 *
 * Departure from the reference (§8.6): no registry digests in the metadata (our
 * embedding registries are not files re-read at load time), extra variables are an error
 * rather than ignored, and loading is strict.
 */
import { createHash } from 'node:crypto';
import { ErrorCode, EsperError, isEsperError } from '../core/index.js';
import { decodeWeights, decodeWeightsFromBytes, encodeWeightsToBytes, seededRng, tf, type EncodedWeights } from '../tensor/index.js';
import { TamiyoGnn, validateGnnConfig, type GnnConfig } from './gnn.js';
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
}

/** Header of a serialised policy. */
export interface PolicyHeader {
  /** {@link architectureOf} the config the weights belong to. */
  readonly architecture: string;
  readonly version: string;
}

/** A policy read back by {@link loadPolicy}; the caller owns (disposes) `gnn`. */
export interface LoadedPolicy {
  readonly gnn: TamiyoGnn;
  readonly version: string;
  readonly architecture: string;
  /** {@link policyChecksum} of the bytes loaded. */
  readonly checksum: string;
}

function invalid(message: string, details: Record<string, string | number> = {}, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.TAMIYO_POLICY_INVALID, `policy weights: ${message}`, { details, cause });
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

/** Parses an architecture string back into a validated config (`TAMIYO_POLICY_INVALID` if it is not one). */
export function configOfArchitecture(architecture: string): GnnConfig {
  let parsed: { id?: unknown; version?: unknown; config?: Partial<GnnConfig> };
  try {
    parsed = JSON.parse(architecture) as typeof parsed;
  } catch (error) {
    throw invalid('architecture is not JSON', {}, error);
  }
  if (parsed?.id !== POLICY_ARCHITECTURE_ID || parsed.version !== POLICY_ARCHITECTURE_VERSION) {
    throw invalid(`unsupported architecture ${String(parsed?.id)} v${String(parsed?.version)}`, {
      expectedId: POLICY_ARCHITECTURE_ID,
      expectedVersion: POLICY_ARCHITECTURE_VERSION,
    });
  }
  const config = parsed.config as GnnConfig;
  try {
    if (typeof config !== 'object' || config === null) throw invalid('architecture has no config');
    validateGnnConfig(config);
  } catch (error) {
    if (isEsperError(error, ErrorCode.TAMIYO_POLICY_INVALID)) throw error;
    throw invalid('architecture config is invalid', {}, error);
  }
  const normalised: GnnConfig = {
    ...config,
    relations: config.relations.map((r) => ({ src: r.src as NodeType, name: r.name, dst: r.dst as NodeType })),
  };
  if (architectureOf(normalised) !== architecture) throw invalid('architecture is not in canonical form');
  return normalised;
}

/**
 * Frames a header and already-encoded weights (low level; {@link serialisePolicy} is the
 * usual entry). Exposed for tools that produce payloads from saved tensors.
 */
export function encodePolicyBytes(header: PolicyHeader, weights: EncodedWeights): Uint8Array {
  const headerBytes = new TextEncoder().encode(JSON.stringify({ architecture: header.architecture, version: header.version }));
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
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `policy version must be 1–${MAX_VERSION_CHARS} chars`, {
      details: { field: 'version' },
    });
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
  return encodePolicyBytes({ architecture: architectureOf(gnn.config), version: meta.version }, { specs, data });
}

/** Splits and verifies the frame; returns the header and the weights blob. */
export function readPolicyFrame(bytes: Uint8Array): { header: PolicyHeader; weights: Uint8Array } {
  if (!(bytes instanceof Uint8Array)) throw invalid('payload is not bytes');
  if (bytes.byteLength < FRAME_BYTES) throw invalid('payload is truncated', { bytes: bytes.byteLength });
  if (!MAGIC.every((b, i) => bytes[i] === b)) throw invalid('not a Tamiyo policy (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = view.getUint32(4, true);
  if (format !== FORMAT_VERSION) throw invalid(`unsupported format version ${format}`, { format });
  const headerBytes = view.getUint32(8, true);
  if (12 + headerBytes + 4 + DIGEST_BYTES > bytes.byteLength) throw invalid('payload is truncated (header)', { bytes: bytes.byteLength });
  const weightsAt = 12 + headerBytes;
  const weightsBytes = view.getUint32(weightsAt, true);
  const body = weightsAt + 4 + weightsBytes;
  if (body + DIGEST_BYTES !== bytes.byteLength) {
    throw invalid(`payload is ${bytes.byteLength} bytes, its frame says ${body + DIGEST_BYTES}`, { bytes: bytes.byteLength });
  }
  const digest = policyDigest(bytes.subarray(0, body));
  if (!digest.every((b, i) => bytes[body + i] === b)) throw invalid('payload digest mismatch (corrupted)');
  let header: Partial<PolicyHeader>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, weightsAt))) as Partial<PolicyHeader>;
  } catch (error) {
    throw invalid('header is not valid JSON', {}, error);
  }
  if (typeof header?.architecture !== 'string' || typeof header.version !== 'string') throw invalid('header lacks architecture or version');
  return { header: { architecture: header.architecture, version: header.version }, weights: bytes.subarray(weightsAt + 4, body) };
}

/**
 * Reads a policy written by {@link serialisePolicy} into a fresh {@link TamiyoGnn}. Throws
 * `TAMIYO_POLICY_INVALID` on a bad magic, truncation or corruption, an architecture that
 * differs from `expectedConfig`'s, a missing, extra or misshapen variable, or a non-finite
 * weight; nothing is left allocated then.
 */
export function loadPolicy(bytes: Uint8Array, expectedConfig?: GnnConfig): LoadedPolicy {
  const { header, weights } = readPolicyFrame(bytes);
  if (expectedConfig !== undefined && architectureOf(expectedConfig) !== header.architecture) {
    throw invalid('architecture mismatch', { version: header.version });
  }
  const config = configOfArchitecture(header.architecture);
  let encoded: EncodedWeights;
  try {
    encoded = decodeWeightsFromBytes(weights);
  } catch (error) {
    throw invalid('weights blob is invalid', {}, error);
  }
  const gnn = new TamiyoGnn(config, seededRng(0));
  try {
    restoreByName(gnn, encoded);
  } catch (error) {
    gnn.dispose();
    throw error;
  }
  return { gnn, version: header.version, architecture: header.architecture, checksum: policyChecksum(bytes) };
}

function restoreByName(gnn: TamiyoGnn, encoded: EncodedWeights): void {
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
    throw invalid(`weights do not fit the architecture: ${problems.slice(0, 5).join('; ')}`, { problems: problems.length });
  }
  const { data } = encoded;
  const aligned = data.byteOffset % 4 === 0 ? data : data.slice();
  const floats = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  for (let i = 0; i < floats.length; i += 1) {
    if (!Number.isFinite(floats[i])) throw invalid(`weight ${i} is not finite`, { index: i });
  }
  const tensors = decodeWeights(encoded);
  try {
    for (const [name, tensor] of Object.entries(tensors)) variables.get(name)?.assign(tensor);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}
