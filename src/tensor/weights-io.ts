/**
 * In-memory save/load of weights and optimizer state, without tfjs-node.
 *
 * Why (reference `tensor-backend-measurements.md` §6): `model.save('file://…')` needs
 * tfjs-node, which cannot install here; `tf.io.encodeWeights` / `decodeWeights` work on any
 * backend, round-trip exactly, and fit a model whose topology changes at run time (grafted
 * seeds) better than a LayersModel. The caller does the file or WAL I/O with the bytes.
 *
 * Byte format of {@link encodeWeightsToBytes} (little-endian):
 * `"ESPW"` · u32 version (1) · u32 header length · header JSON `{specs, crc32c}` · data,
 * where `crc32c` covers the data section, so a torn or corrupted blob is rejected rather
 * than loaded.
 *
 * **Optimizer state restores only with stable variable names and order.** tfjs optimizers
 * name their slots after the variable (`<name>/m`, `<name>/v` for Adam, `<name>/momentum`)
 * but `setWeights` restores them *by position* in the order the optimizer first saw the
 * variables. {@link restoreOptimizerState} therefore checks the saved slot names against
 * the expected variable names, in order, and refuses a mismatch instead of silently
 * pairing moments with the wrong weights. Give every `tf.variable(…, name)` a stable name
 * (auto-generated names differ between runs) and pass the same ordered list to
 * `optimizer.minimize(f, returnCost, varList)`. Adam's private running β products are
 * saved too, so a resumed run's next step is bit-identical to an uninterrupted one (tfjs
 * alone recomputes them with `pow`, off in the last bit).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { crc32c, ErrorCode, EsperError, parsePersistedJson } from '../core/index.js';

/** A tensor with its name (tfjs-core uses this shape but does not export the type). */
export interface NamedTensor {
  readonly name: string;
  readonly tensor: tf.Tensor;
}

/** Tensors encoded by {@link encodeWeights}: the tfjs manifest entries plus raw bytes. */
export interface EncodedWeights {
  /** One entry per tensor, in encoding order (`name`, `shape`, `dtype`). */
  readonly specs: readonly tf.io.WeightsManifestEntry[];
  /** The concatenated tensor data. */
  readonly data: Uint8Array;
}

const MAGIC = 0x57505345; // "ESPW" read as little-endian u32
const FORMAT_VERSION = 1;
const PREFIX_BYTES = 12;

/** Bytes per element of each dtype a weights blob may hold. */
const BYTES_PER_ELEMENT = { float32: 4, int32: 4, bool: 1 } as const;

/** The header of a weights blob, checked field by field on every read. */
const WeightsHeaderSchema = z.strictObject({
  specs: z.array(
    z.strictObject({
      name: z.string(),
      shape: z.array(z.number().int().nonnegative()),
      dtype: z.enum(['float32', 'int32', 'bool']),
    }),
  ),
  crc32c: z.number().int().nonnegative(),
});

function invalid(message: string, details: Record<string, string | number | boolean> = {}, cause?: unknown): EsperError {
  return new EsperError(ErrorCode.TENSOR_WEIGHTS_INVALID, message, { details, cause });
}

/** Encodes named tensors (data is copied; the tensors are not disposed). */
export async function encodeWeights(tensors: tf.NamedTensorMap | readonly NamedTensor[]): Promise<EncodedWeights> {
  const list: { name: string; tensor: tf.Tensor }[] = Array.isArray(tensors)
    ? (tensors as readonly NamedTensor[]).map(({ name, tensor }) => ({ name, tensor }))
    : Object.entries(tensors as tf.NamedTensorMap).map(([name, tensor]) => ({ name, tensor }));
  const seen = new Set<string>();
  for (const { name } of list) {
    if (seen.has(name)) throw invalid(`duplicate tensor name '${name}'`, { name });
    seen.add(name);
  }
  const { data, specs } = await tf.io.encodeWeights(list);
  return { specs, data: new Uint8Array(data) };
}

/** Decodes to fresh tensors on the active backend; the caller owns (disposes) them. */
export function decodeWeights(encoded: EncodedWeights): tf.NamedTensorMap {
  const { data } = encoded;
  // decodeWeights wants an ArrayBuffer of exactly the data (a view's buffer may be larger).
  // A copy (`new Uint8Array`), not `slice()`: a Node Buffer's slice is a view of its whole pool.
  const buffer = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data.buffer : new Uint8Array(data).buffer;
  try {
    return tf.io.decodeWeights(buffer as ArrayBuffer, [...encoded.specs]);
  } catch (error) {
    throw invalid('weights do not match their specs', {}, error);
  }
}

/** One self-describing, checksummed buffer for {@link EncodedWeights}. */
export function encodeWeightsToBytes(encoded: EncodedWeights): Uint8Array {
  const header = new TextEncoder().encode(JSON.stringify({ specs: encoded.specs, crc32c: crc32c(encoded.data) }));
  const out = new Uint8Array(PREFIX_BYTES + header.byteLength + encoded.data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, FORMAT_VERSION, true);
  view.setUint32(8, header.byteLength, true);
  out.set(header, PREFIX_BYTES);
  out.set(encoded.data, PREFIX_BYTES + header.byteLength);
  return out;
}

/** Parses and verifies a buffer written by {@link encodeWeightsToBytes}. */
export function decodeWeightsFromBytes(bytes: Uint8Array): EncodedWeights {
  if (bytes.byteLength < PREFIX_BYTES) throw invalid('weights blob is truncated', { bytes: bytes.byteLength });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw invalid('not an Esper weights blob (bad magic)');
  const version = view.getUint32(4, true);
  if (version !== FORMAT_VERSION) throw invalid(`unsupported weights format version ${version}`, { version });
  const headerBytes = view.getUint32(8, true);
  if (PREFIX_BYTES + headerBytes > bytes.byteLength) throw invalid('weights header is truncated');
  const header = parsePersistedJson(WeightsHeaderSchema, bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes), {
    code: ErrorCode.TENSOR_WEIGHTS_INVALID,
    what: 'weights header',
  });
  const data = bytes.slice(PREFIX_BYTES + headerBytes);
  const expectedBytes = header.specs.reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1) * BYTES_PER_ELEMENT[spec.dtype], 0);
  if (data.byteLength !== expectedBytes) {
    throw invalid(`weights data is ${data.byteLength} bytes, specs need ${expectedBytes}`, { bytes: data.byteLength, expectedBytes });
  }
  if (crc32c(data) !== header.crc32c) throw invalid('weights data checksum mismatch');
  return { specs: header.specs, data };
}

/** Encodes variables by their (stable) names into one checksummed buffer. */
export async function saveVariables(variables: readonly tf.Variable[]): Promise<Uint8Array> {
  return encodeWeightsToBytes(await encodeWeights(variables.map((v) => ({ name: v.name, tensor: v }))));
}

/** Options of {@link restoreVariables}. */
export interface RestoreVariablesOptions {
  /**
   * Accept a blob that lacks some of the variables (they keep their values) — e.g. a seed
   * grafted after the checkpoint. Extra tensors in the blob are always an error.
   * @default false
   */
  readonly allowMissing?: boolean;
}

/**
 * Assigns saved values to `variables` in place, by name, after checking every name, shape
 * and dtype (nothing is assigned unless all match). Leaves no tensors behind.
 */
export function restoreVariables(variables: readonly tf.Variable[], bytes: Uint8Array, options: RestoreVariablesOptions = {}): void {
  const encoded = decodeWeightsFromBytes(bytes);
  const byName = new Map(variables.map((v) => [v.name, v]));
  const problems: string[] = [];
  const saved = new Set<string>();
  for (const spec of encoded.specs) {
    saved.add(spec.name);
    const v = byName.get(spec.name);
    if (v === undefined) problems.push(`unexpected '${spec.name}'`);
    else if (v.dtype !== spec.dtype || !tf.util.arraysEqual(v.shape, spec.shape)) {
      problems.push(`'${spec.name}' is ${v.dtype}[${v.shape.join(',')}], saved ${spec.dtype}[${spec.shape.join(',')}]`);
    }
  }
  if (options.allowMissing !== true) {
    for (const name of byName.keys()) if (!saved.has(name)) problems.push(`missing '${name}'`);
  }
  if (problems.length > 0) throw invalid(`weights do not fit the variables: ${problems.join('; ')}`, { problems: problems.length });
  const tensors = decodeWeights(encoded);
  try {
    for (const [name, tensor] of Object.entries(tensors)) byName.get(name)?.assign(tensor);
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

/** Prefix of entries Esper adds to an optimizer's own `getWeights()` list. */
const EXTRA_STATE_PREFIX = 'esper:';

/**
 * Private running products of Adam-family optimizers (`β₁ᵗ`, `β₂ᵗ`). tfjs's `setWeights`
 * recomputes them as `pow(β, iterations + 1)`, which differs from the running product in
 * the last float32 bit (0.99700308 vs 0.99700302 for β₂ = 0.999 after 2 steps), so the
 * first step after a restore would not match an uninterrupted run. Saving them makes the
 * resume bit-exact.
 */
const RUNNING_PRODUCTS = ['accBeta1', 'accBeta2'] as const;

function runningProducts(optimizer: tf.Optimizer): [string, tf.Variable][] {
  const fields = optimizer as unknown as Record<string, unknown>;
  const out: [string, tf.Variable][] = [];
  for (const key of RUNNING_PRODUCTS) {
    const value = fields[key];
    if (value instanceof tf.Variable) out.push([key, value]);
  }
  return out;
}

/**
 * Encodes an optimizer's state into one checksummed buffer: `getWeights()` (the iteration
 * count and every slot variable, named after its variable) plus the running β products
 * Adam-family optimizers keep privately (see {@link restoreOptimizerState}).
 */
export async function saveOptimizerState(optimizer: tf.Optimizer): Promise<Uint8Array> {
  const weights = await optimizer.getWeights();
  const extras = runningProducts(optimizer).map(([key, tensor]) => ({ name: `${EXTRA_STATE_PREFIX}${key}`, tensor }));
  try {
    return encodeWeightsToBytes(await encodeWeights([...weights, ...extras]));
  } finally {
    // getWeights() returns a fresh scalar for the iteration count (slots are the live variables).
    for (const w of weights) if (w.name === 'iter') w.tensor.dispose();
  }
}

/** Options of {@link restoreOptimizerState}. */
export interface RestoreOptimizerStateOptions {
  /**
   * Names of the variables the optimizer updates, in the order it sees them (the
   * `varList` order of `minimize`). Saved slot names must follow this order exactly.
   */
  readonly variableNames: readonly string[];
}

/**
 * Restores optimizer state saved by {@link saveOptimizerState}, after checking that the
 * saved slots belong to `variableNames` in order (tfjs restores slots by position). The
 * optimizer's previous slot variables are disposed. Adam's running β products are restored
 * exactly, so the next step equals that of an uninterrupted run bit for bit.
 */
export async function restoreOptimizerState(
  optimizer: tf.Optimizer,
  bytes: Uint8Array,
  options: RestoreOptimizerStateOptions,
): Promise<void> {
  const encoded = decodeWeightsFromBytes(bytes);
  const allNames = encoded.specs.map((s) => s.name);
  const names = allNames.filter((name) => !name.startsWith(EXTRA_STATE_PREFIX));
  const extraNames = allNames.filter((name) => name.startsWith(EXTRA_STATE_PREFIX));
  if (names[0] !== 'iter') throw invalid("optimizer state must start with 'iter'");
  const slots = names.slice(1);
  const expected = options.variableNames;
  const mismatch = (): EsperError =>
    new EsperError(
      ErrorCode.TENSOR_OPTIMIZER_STATE_MISMATCH,
      `optimizer state slots [${slots.join(', ')}] do not follow variables [${expected.join(', ')}]`,
      { details: { slots: slots.length, variables: expected.length } },
    );
  if (expected.length === 0 ? slots.length !== 0 : slots.length % expected.length !== 0) throw mismatch();
  slots.forEach((slot, i) => {
    const cut = slot.lastIndexOf('/');
    if (cut <= 0 || slot.slice(0, cut) !== expected[i % expected.length]) throw mismatch();
  });
  const previous = await optimizer.getWeights();
  const tensors = decodeWeights(encoded);
  let restored = false;
  try {
    await optimizer.setWeights(names.map((name) => ({ name, tensor: tensors[name] as tf.Tensor })));
    const products = new Map(runningProducts(optimizer));
    for (const name of extraNames) {
      products.get(name.slice(EXTRA_STATE_PREFIX.length))?.assign(tensors[name] as tf.Tensor);
    }
    restored = true;
  } finally {
    // setWeights wraps our tensors in new variables (shared, ref-counted data): drop our
    // handles. The old slots are replaced without being disposed, so dispose them once the
    // replacement succeeded; the iteration scalar getWeights() made is ours either way.
    tf.dispose(Object.values(tensors));
    tf.dispose(previous.filter((w) => restored || w.name === 'iter').map((w) => w.tensor));
  }
}
