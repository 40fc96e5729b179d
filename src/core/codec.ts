/**
 * Strict decoding and bounded encoding of Leyline messages. Everything read from outside
 * the process decodes through {@link decodeMessage}, so malformed input is always a typed
 * error (the codes: docs/contracts.md, "Strict decoding").
 *
 * The bytes go through Leyline's generated wire codec (`encodeBinary` / `decodeBinary`:
 * protobuf-es's bytes and messages exactly). The contract walk (unknown fields, list
 * bounds, depth) runs only where it can find something: when the decoder kept unknown
 * fields, or when the message type can reach a bounded list or nest past the depth bound.
 */
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { decodeBinary, encodeBinary } from '../leyline/index.js';
import { ErrorCode, EsperError } from './errors.js';
import { CONTRACT_LIMITS } from './limits.js';

/** Options of {@link decodeMessage} and {@link encodeMessage}. */
export interface DecodeOptions {
  /** @default CONTRACT_LIMITS.messageMaxBytes */
  readonly maxBytes?: number;
}

type Bound = { readonly field: string; readonly max: number };

/** Per message type, the repeated fields whose length the contract bounds. */
const LIST_BOUNDS: Readonly<Record<string, readonly Bound[]>> = {
  'esper.leyline.v1.BlendConfig': [
    { field: 'alphaVec', max: CONTRACT_LIMITS.alphaVecMaxEntries },
    { field: 'policyLogits', max: CONTRACT_LIMITS.policyLogitsMaxEntries },
  ],
  'esper.leyline.v1.TrainingMetrics': [{ field: 'extraMetrics', max: CONTRACT_LIMITS.extraMetricsMaxEntries }],
  'esper.leyline.v1.FieldReport': [{ field: 'extraMetrics', max: CONTRACT_LIMITS.extraMetricsMaxEntries }],
};

/** Decodes `bytes` as a `schema` message, strictly (see module doc). */
export function decodeMessage<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array, options: DecodeOptions = {}): MessageShape<Desc> {
  checkSize(schema, bytes, options);
  let message: MessageShape<Desc>;
  let unknownFields: boolean;
  try {
    ({ message, unknownFields } = decodeBinary(schema, bytes));
  } catch (cause) {
    throw new EsperError(ErrorCode.DECODE_FAILED, `${schema.typeName}: malformed encoding`, {
      cause,
      details: { typeName: schema.typeName, bytes: bytes.length },
    });
  }
  if (unknownFields || needsWalk(schema)) validateDecoded(schema, message as Record<string, unknown>, schema.typeName, 0);
  return message;
}

/**
 * Encodes a message after checking the contract bounds and the size bound, so producers
 * fail fast with the same typed errors consumers would raise.
 */
export function encodeMessage<Desc extends DescMessage>(
  schema: Desc,
  message: MessageShape<Desc>,
  options: DecodeOptions = {},
): Uint8Array {
  if (needsWalk(schema)) validateDecoded(schema, message as Record<string, unknown>, schema.typeName, 0, true);
  const bytes = encodeBinary(schema, message);
  checkSize(schema, bytes, options);
  return bytes;
}

function checkSize(schema: DescMessage, bytes: Uint8Array, options: DecodeOptions): void {
  const maxBytes = options.maxBytes ?? CONTRACT_LIMITS.messageMaxBytes;
  if (bytes.length > maxBytes) {
    throw new EsperError(ErrorCode.MESSAGE_TOO_LARGE, `${schema.typeName}: ${bytes.length} bytes exceeds the ${maxBytes}-byte bound`, {
      details: { typeName: schema.typeName, bytes: bytes.length, maxBytes },
    });
  }
}

/** The message-valued fields of a message type, precomputed once per type. */
interface ValidationPlan {
  readonly bounds: readonly Bound[];
  /** Singular message fields outside oneofs. */
  readonly messages: readonly { readonly name: string; readonly desc: DescMessage }[];
  /** Repeated message fields and maps with message values. */
  readonly collections: readonly { readonly name: string; readonly desc: DescMessage; readonly map: boolean }[];
  /** Oneof members that are messages, keyed by oneof then case name. */
  readonly oneofs: readonly { readonly name: string; readonly cases: ReadonlyMap<string, DescMessage> }[];
}

const plans = new WeakMap<DescMessage, ValidationPlan>();

function planFor(desc: DescMessage): ValidationPlan {
  let plan = plans.get(desc);
  if (plan !== undefined) return plan;
  const messages: { name: string; desc: DescMessage }[] = [];
  const collections: { name: string; desc: DescMessage; map: boolean }[] = [];
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    if (field.fieldKind === 'message') messages.push({ name: field.localName, desc: field.message });
    else if (field.fieldKind === 'list' && field.listKind === 'message') {
      collections.push({ name: field.localName, desc: field.message, map: false });
    } else if (field.fieldKind === 'map' && field.mapKind === 'message') {
      collections.push({ name: field.localName, desc: field.message, map: true });
    }
  }
  const oneofs = desc.oneofs.map((oneof) => ({
    name: oneof.localName,
    cases: new Map(oneof.fields.flatMap((f) => (f.fieldKind === 'message' ? [[f.localName, f.message] as const] : []))),
  }));
  plan = { bounds: LIST_BOUNDS[desc.typeName] ?? [], messages, collections, oneofs };
  plans.set(desc, plan);
  return plan;
}

const walks = new WeakMap<DescMessage, boolean>();

/**
 * Whether the contract walk of a `desc` message can fail for a reason other than unknown
 * fields: some message type it reaches has a bounded list, or its types nest (or recurse)
 * deeper than `messageMaxDepth`. Computed once per type from the descriptors.
 */
function needsWalk(desc: DescMessage): boolean {
  let walk = walks.get(desc);
  if (walk === undefined) {
    walk = nestingDepth(desc, []) > CONTRACT_LIMITS.messageMaxDepth;
    walks.set(desc, walk);
  }
  return walk;
}

/**
 * Deepest nesting below `desc` as the walk counts it (0 for a message without message
 * fields); `Infinity` for a type that recurses or reaches a bounded list.
 */
function nestingDepth(desc: DescMessage, path: readonly DescMessage[]): number {
  if (path.includes(desc) || LIST_BOUNDS[desc.typeName] !== undefined) return Infinity;
  const plan = planFor(desc);
  const children = [
    ...plan.messages.map((m) => m.desc),
    ...plan.collections.map((c) => c.desc),
    ...plan.oneofs.flatMap((o) => [...o.cases.values()]),
  ];
  let deepest = 0;
  for (const child of children) deepest = Math.max(deepest, 1 + nestingDepth(child, [...path, desc]));
  return deepest;
}

/**
 * Walks a message along its descriptor: rejects unknown fields (when decoding) and
 * enforces the list bounds, at every depth.
 */
function validateDecoded(desc: DescMessage, message: Record<string, unknown>, path: string, depth: number, producing = false): void {
  if (depth > CONTRACT_LIMITS.messageMaxDepth) {
    throw new EsperError(ErrorCode.DECODE_FAILED, `${path}: nesting deeper than allowed`);
  }
  const unknown = message['$unknown'];
  if (!producing && Array.isArray(unknown) && unknown.length > 0) {
    const numbers = (unknown as { no: number }[]).map((u) => u.no).join(', ');
    throw new EsperError(ErrorCode.DECODE_FAILED, `${path}: unknown field(s) ${numbers}`, {
      details: { typeName: desc.typeName, unknownFields: numbers },
    });
  }
  const plan = planFor(desc);
  for (const bound of plan.bounds) {
    const list = message[bound.field];
    if (Array.isArray(list) && list.length > bound.max) {
      throw new EsperError(
        ErrorCode.CONTRACT_BOUND_EXCEEDED,
        `${path}.${bound.field}: ${list.length} entries exceeds the bound of ${bound.max}`,
        { details: { typeName: desc.typeName, field: bound.field, entries: list.length, max: bound.max } },
      );
    }
  }
  for (const { name, desc: child } of plan.messages) {
    const value = message[name];
    if (value !== undefined) validateDecoded(child, value as Record<string, unknown>, `${path}.${name}`, depth + 1, producing);
  }
  for (const { name, desc: child, map } of plan.collections) {
    const value = message[name];
    if (value === undefined) continue;
    const items = map ? Object.values(value as Record<string, unknown>) : (value as unknown[]);
    items.forEach((item, i) => validateDecoded(child, item as Record<string, unknown>, `${path}.${name}[${i}]`, depth + 1, producing));
  }
  for (const { name, cases } of plan.oneofs) {
    const selected = message[name] as { case?: string; value?: unknown } | undefined;
    const child = selected?.case === undefined ? undefined : cases.get(selected.case);
    if (child !== undefined) {
      validateDecoded(child, selected!.value as Record<string, unknown>, `${path}.${selected!.case!}`, depth + 1, producing);
    }
  }
}
