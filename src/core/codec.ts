/**
 * Strict decoding of Leyline messages. Anything that reads bytes from outside the process
 * (bus, WAL, files, HTTP) decodes through {@link decodeMessage}, so malformed input always
 * becomes a typed {@link EsperError} — never a crash, never a half-checked object:
 *
 * - input over the size bound → MESSAGE_TOO_LARGE;
 * - bytes protobuf cannot parse (truncated inside a field, bad wire type, invalid UTF-8)
 *   → DECODE_FAILED;
 * - fields this build does not know → DECODE_FAILED (all processes share one contract
 *   version before 1.0; an unknown field means corruption or a mismatched peer);
 * - contract bounds exceeded (alpha_vec, extra_metrics) → CONTRACT_BOUND_EXCEEDED.
 *
 * A message cut exactly at a field boundary is still a valid protobuf encoding; integrity
 * against truncation comes from the framing of the carrier (CRC frames in the WAL, the
 * HMAC on bus envelopes), not from protobuf.
 */
import {
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageShape,
} from '@bufbuild/protobuf';
import { ErrorCode, EsperError } from './errors.js';
import { CONTRACT_LIMITS } from './limits.js';

/** Options of {@link decodeMessage}. */
export interface DecodeOptions {
  /** @default CONTRACT_LIMITS.messageMaxBytes */
  readonly maxBytes?: number;
}

type Bound = { readonly field: string; readonly max: number };

/** Per message type, the repeated fields whose length the contract bounds. */
const LIST_BOUNDS: Readonly<Record<string, readonly Bound[]>> = {
  'esper.leyline.v1.BlendConfig': [{ field: 'alphaVec', max: CONTRACT_LIMITS.alphaVecMaxEntries }],
  'esper.leyline.v1.TrainingMetrics': [
    { field: 'extraMetrics', max: CONTRACT_LIMITS.extraMetricsMaxEntries },
  ],
  'esper.leyline.v1.FieldReport': [
    { field: 'extraMetrics', max: CONTRACT_LIMITS.extraMetricsMaxEntries },
  ],
};

/** Decodes `bytes` as a `schema` message, strictly (see module doc). */
export function decodeMessage<Desc extends DescMessage>(
  schema: Desc,
  bytes: Uint8Array,
  options: DecodeOptions = {},
): MessageShape<Desc> {
  const maxBytes = options.maxBytes ?? CONTRACT_LIMITS.messageMaxBytes;
  if (bytes.length > maxBytes) {
    throw new EsperError(
      ErrorCode.MESSAGE_TOO_LARGE,
      `${schema.typeName}: ${bytes.length} bytes exceeds the ${maxBytes}-byte bound`,
      { details: { typeName: schema.typeName, bytes: bytes.length, maxBytes } },
    );
  }
  let message: MessageShape<Desc>;
  try {
    message = fromBinary(schema, bytes);
  } catch (cause) {
    throw new EsperError(ErrorCode.DECODE_FAILED, `${schema.typeName}: malformed encoding`, {
      cause,
      details: { typeName: schema.typeName, bytes: bytes.length },
    });
  }
  validateDecoded(message, schema.typeName, 0);
  return message;
}

/** Encodes a message after checking the contract bounds (producers fail fast). */
export function encodeMessage<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
): Uint8Array {
  validateDecoded(message, schema.typeName, 0, true);
  return toBinary(schema, message);
}

function validateDecoded(value: unknown, path: string, depth: number, producing = false): void {
  if (depth > CONTRACT_LIMITS.messageMaxDepth) {
    throw new EsperError(ErrorCode.DECODE_FAILED, `${path}: nesting deeper than allowed`);
  }
  if (Array.isArray(value)) {
    value.forEach((item, i) => validateDecoded(item, `${path}[${i}]`, depth + 1, producing));
    return;
  }
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return;
  const record = value as Record<string, unknown>;
  const typeName = record['$typeName'];
  if (typeof typeName === 'string') {
    const unknown = record['$unknown'];
    if (!producing && Array.isArray(unknown) && unknown.length > 0) {
      const numbers = (unknown as { no: number }[]).map((u) => u.no).join(', ');
      throw new EsperError(ErrorCode.DECODE_FAILED, `${path}: unknown field(s) ${numbers}`, {
        details: { typeName, unknownFields: numbers },
      });
    }
    for (const bound of LIST_BOUNDS[typeName] ?? []) {
      const list = record[bound.field];
      if (Array.isArray(list) && list.length > bound.max) {
        throw new EsperError(
          ErrorCode.CONTRACT_BOUND_EXCEEDED,
          `${path}.${bound.field}: ${list.length} entries exceeds the bound of ${bound.max}`,
          { details: { typeName, field: bound.field, entries: list.length, max: bound.max } },
        );
      }
    }
  }
  for (const [key, child] of Object.entries(record)) {
    if (key.startsWith('$')) continue;
    validateDecoded(child, `${path}.${key}`, depth + 1, producing);
  }
}
