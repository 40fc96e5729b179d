/**
 * protoc plugin `protoc-gen-esper-wire`: writes `wire_codec.ts`, a static binary encoder
 * and decoder per Leyline message (and per message they reach, such as
 * google.protobuf.Timestamp), for the protobuf-es v2 message shapes `protoc-gen-es`
 * generates beside it. `buf generate` runs it (buf.gen.yaml, `strategy: all`, so one
 * file covers every message).
 *
 * Each generated function is the straight-line form of what protobuf-es's reflective
 * `toBinary` / `fromBinary` do for that message, over the primitives of
 * `src/leyline/wire-runtime.ts`: fields written in field-number order with the same
 * presence rules and value checks, so the bytes are `toBinary`'s exactly; fields read with
 * `BinaryReader` into objects shaped as `create()` shapes them, so the messages equal
 * `fromBinary`'s and the same inputs fail. `test/leyline/wire-codec.test.ts` holds the
 * parity properties.
 *
 * Features Leyline does not use are refused at generation time instead of being
 * half-supported: group (delimited) encoding, closed enums, files other than proto3
 * (field defaults on a prototype chain), and fields of wrapper or Struct well-known types
 * (protobuf-es maps those to plain values). A contract that needs one fails `npm run gen`
 * with the reason.
 */
import { createEcmaScriptPlugin, runNodeJs, type GeneratedFile, type Printable, type Schema } from '@bufbuild/protoplugin';

// Descriptor types as protoplugin sees them (it carries its own copy of @bufbuild/protobuf).
type DescFile = Schema['files'][number];
type DescMessage = DescFile['messages'][number];
type DescField = DescMessage['fields'][number];

/** `google.protobuf.FieldDescriptorProto.Type` numbers, as protobuf-es's `ScalarType` has them. */
const ScalarType = {
  DOUBLE: 1,
  FLOAT: 2,
  INT64: 3,
  UINT64: 4,
  INT32: 5,
  FIXED64: 6,
  FIXED32: 7,
  BOOL: 8,
  STRING: 9,
  BYTES: 12,
  UINT32: 13,
  SFIXED32: 15,
  SFIXED64: 16,
  SINT32: 17,
  SINT64: 18,
} as const;
type ScalarType = (typeof ScalarType)[keyof typeof ScalarType];

/** Where the runtime primitives live, relative to the output root (src/leyline/gen). */
const RUNTIME_FROM_ROOT = '../wire-runtime.js';
const OUTPUT = 'esper/leyline/v1/wire_codec.ts';
const EDITION_PROTO3 = 999;
const WRAPPERS_AND_STRUCT = new Set([
  'google.protobuf.DoubleValue',
  'google.protobuf.FloatValue',
  'google.protobuf.Int64Value',
  'google.protobuf.UInt64Value',
  'google.protobuf.Int32Value',
  'google.protobuf.UInt32Value',
  'google.protobuf.BoolValue',
  'google.protobuf.StringValue',
  'google.protobuf.BytesValue',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
]);

const WIRE_VARINT = 0;
const WIRE_BIT64 = 1;
const WIRE_DELIMITED = 2;
const WIRE_BIT32 = 5;

/** The field description protobuf-es puts in its error messages. */
const label = (field: DescField): string => JSON.stringify(`${field.parent.typeName}.${field.name}`);

const name = (desc: DescMessage): string => desc.typeName.replace(/\./g, '_');

const tagOf = (fieldNo: number, wireType: number): number => ((fieldNo << 3) | wireType) >>> 0;

/** Writes the tag: one byte for fields 1–15, a varint beyond. */
const writeTag = (fieldNo: number, wireType: number): string => {
  const tag = tagOf(fieldNo, wireType);
  return tag < 0x80 ? `w.tag1(${tag});` : `w.varint32(${tag});`;
};

function wireTypeOf(scalar: ScalarType): number {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WIRE_DELIMITED;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WIRE_BIT64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WIRE_BIT32;
    default:
      return WIRE_VARINT;
  }
}

/** The writer call for a scalar value `expr` (enums are int32). */
function writeScalar(scalar: ScalarType, expr: string, field: DescField): string {
  const l = label(field);
  switch (scalar) {
    case ScalarType.STRING:
      return `w.string(${expr});`;
    case ScalarType.BOOL:
      return `w.bool(${expr});`;
    case ScalarType.DOUBLE:
      return `w.double(${expr});`;
    case ScalarType.FLOAT:
      return `w.float(${expr}, ${l});`;
    case ScalarType.INT32:
      return `w.int32(${expr}, ${l});`;
    case ScalarType.UINT32:
      return `w.uint32(${expr}, ${l});`;
    case ScalarType.SINT32:
      return `w.sint32(${expr}, ${l});`;
    case ScalarType.FIXED32:
      return `w.fixed32(${expr}, ${l});`;
    case ScalarType.SFIXED32:
      return `w.sfixed32(${expr}, ${l});`;
    case ScalarType.INT64:
      return `w.int64(${expr}, ${l});`;
    case ScalarType.UINT64:
      return `w.uint64(${expr}, ${l});`;
    case ScalarType.SINT64:
      return `w.sint64(${expr}, ${l});`;
    case ScalarType.FIXED64:
      return `w.fixed64(${expr}, ${l});`;
    case ScalarType.SFIXED64:
      return `w.sfixed64(${expr}, ${l});`;
    case ScalarType.BYTES:
      return `w.bytes(${expr}, ${l});`;
  }
}

/** The reader call for a scalar (enums are int32); 64-bit values as bigint or string per `jstype`. */
function readScalar(scalar: ScalarType, utf8Validation: boolean, longAsString: boolean): string {
  const long = (call: string): string => (longAsString ? `String(${call})` : `(${call} as bigint)`);
  switch (scalar) {
    case ScalarType.STRING:
      return `r.string(${String(utf8Validation)})`;
    case ScalarType.BOOL:
      return 'r.bool()';
    case ScalarType.DOUBLE:
      return 'r.double()';
    case ScalarType.FLOAT:
      return 'r.float()';
    case ScalarType.INT32:
      return 'r.int32()';
    case ScalarType.UINT32:
      return 'r.uint32()';
    case ScalarType.SINT32:
      return 'r.sint32()';
    case ScalarType.FIXED32:
      return 'r.fixed32()';
    case ScalarType.SFIXED32:
      return 'r.sfixed32()';
    case ScalarType.INT64:
      return long('r.int64()');
    case ScalarType.UINT64:
      return long('r.uint64()');
    case ScalarType.SINT64:
      return long('r.sint64()');
    case ScalarType.FIXED64:
      return long('r.fixed64()');
    case ScalarType.SFIXED64:
      return long('r.sfixed64()');
    case ScalarType.BYTES:
      return 'r.bytes()';
  }
}

/** The zero value `create()` gives a scalar field with implicit presence. */
function scalarZero(scalar: ScalarType, longAsString: boolean): string {
  switch (scalar) {
    case ScalarType.STRING:
      return '""';
    case ScalarType.BOOL:
      return 'false';
    case ScalarType.BYTES:
      return 'EMPTY_BYTES';
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return longAsString ? '"0"' : '0n';
    default:
      return '0';
  }
}

/** `toBinary`'s "is set" test for a scalar with implicit presence, on the local `v`. */
function implicitlySet(field: DescField & { fieldKind: 'scalar' | 'enum' }): string {
  if (field.fieldKind === 'enum') return `(v as number) !== ${String(field.enum.values[0]?.number ?? 0)}`;
  switch (field.scalar) {
    case ScalarType.BOOL:
      return 'v !== false';
    case ScalarType.STRING:
      return 'v !== ""';
    case ScalarType.BYTES:
      return '!((v as unknown) instanceof Uint8Array) || v.byteLength > 0';
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return '!Object.is(v, 0)';
    default:
      // Loose, as protobuf-es compares: matches 0, 0n and "0".
      return '(v as unknown) != 0';
  }
}

function check(desc: DescMessage): void {
  if (desc.file.edition !== EDITION_PROTO3) {
    throw new Error(`${desc.typeName}: only proto3 files are supported (field defaults of other editions live on a prototype chain)`);
  }
  for (const field of desc.fields) {
    if ('delimitedEncoding' in field && field.delimitedEncoding)
      throw new Error(`${field.parent.typeName}.${field.name}: group encoding is not supported`);
    const en =
      field.fieldKind === 'enum' ||
      (field.fieldKind === 'list' && field.listKind === 'enum') ||
      (field.fieldKind === 'map' && field.mapKind === 'enum')
        ? field.enum
        : undefined;
    if (en !== undefined && !en.open) throw new Error(`${field.parent.typeName}.${field.name}: closed enums are not supported`);
    const message = field.message;
    if (message !== undefined && WRAPPERS_AND_STRUCT.has(message.typeName)) {
      throw new Error(`${field.parent.typeName}.${field.name}: ${message.typeName} fields are not supported`);
    }
  }
}

/** Every message of `files` (nested ones too) and every message their fields reach, in a stable order. */
function messagesOf(files: readonly DescFile[]): DescMessage[] {
  const seen = new Set<string>();
  const out: DescMessage[] = [];
  const visit = (desc: DescMessage): void => {
    if (seen.has(desc.typeName)) return;
    seen.add(desc.typeName);
    out.push(desc);
    for (const nested of desc.nestedMessages) visit(nested);
  };
  for (const file of files) for (const desc of file.messages) visit(desc);
  for (let i = 0; i < out.length; i += 1) {
    for (const field of (out[i] as DescMessage).fields) {
      const message = field.message;
      if (message !== undefined && !seen.has(message.typeName)) {
        seen.add(message.typeName);
        out.push(message);
      }
    }
  }
  return out;
}

function encoder(f: GeneratedFile, desc: DescMessage): Printable[] {
  const lines: string[] = [];
  const first = desc.fields[0];
  if (first !== undefined) {
    lines.push(
      `  if (m.$typeName !== ${JSON.stringify(desc.typeName)}) foreignMessage(${JSON.stringify(`field ${first.parent.typeName}.${first.name}`)}, ${JSON.stringify(desc.typeName)}, m.$typeName);`,
    );
  }
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    lines.push(...encodeField(field).map((line) => `  ${line}`));
  }
  lines.push('  if (m.$unknown !== undefined) w.unknown(m.$unknown);');
  return [`function encode_${name(desc)}(w: WireWriter, m: `, f.importShape(desc), `): void {\n${lines.join('\n')}\n}\n`];
}

/** Writes a message value `expr` of `child` with its tag. */
const writeChild = (fieldNo: number, child: DescMessage, expr: string): string[] => [
  writeTag(fieldNo, WIRE_DELIMITED),
  `{ const at = w.fork(); encode_${name(child)}(w, ${expr}); w.join(at); }`,
];

function encodeField(field: DescField): string[] {
  const n = field.number;
  const local = field.localName;
  switch (field.fieldKind) {
    case 'message':
    case 'scalar':
    case 'enum': {
      const value =
        field.fieldKind === 'message'
          ? writeChild(n, field.message, 'v')
          : [
              writeTag(n, wireTypeOf(field.fieldKind === 'enum' ? ScalarType.INT32 : field.scalar)),
              writeScalar(field.fieldKind === 'enum' ? ScalarType.INT32 : field.scalar, 'v', field),
            ];
      if (field.oneof !== undefined) {
        return [
          `{ const o = m.${field.oneof.localName}; if (o.case === ${JSON.stringify(local)}) { const v = o.value;`,
          ...value.map((l) => `  ${l}`),
          '} }',
        ];
      }
      if (field.presence !== 2 /* IMPLICIT */ || field.fieldKind === 'message') {
        return [
          `{ const v = m.${local}; if (v !== undefined && hasOwn(m, ${JSON.stringify(local)})) {`,
          ...value.map((l) => `  ${l}`),
          '} }',
        ];
      }
      return [`{ const v = m.${local}; if (${implicitlySet(field)}) {`, ...value.map((l) => `  ${l}`), '} }'];
    }
    case 'list': {
      if (field.listKind === 'message') {
        return [
          `{ const items = m.${local}; for (let i = 0; i < items.length; i++) {`,
          ...writeChild(n, field.message, `items[i] as ${name(field.message)}_Shape`).map((l) => `  ${l}`),
          '} }',
        ];
      }
      const scalar = field.listKind === 'enum' ? ScalarType.INT32 : field.scalar;
      if (field.packed) {
        return [
          `{ const items = m.${local}; if (items.length !== 0) {`,
          `  ${writeTag(n, WIRE_DELIMITED)} const at = w.fork();`,
          `  for (let i = 0; i < items.length; i++) ${writeScalar(scalar, 'items[i]', field)}`,
          '  w.join(at);',
          '} }',
        ];
      }
      return [
        `{ const items = m.${local}; for (let i = 0; i < items.length; i++) {`,
        `  ${writeTag(n, wireTypeOf(scalar))} ${writeScalar(scalar, 'items[i]', field)}`,
        '} }',
      ];
    }
    case 'map': {
      const key = field.mapKey;
      const keyExpr =
        key === ScalarType.STRING
          ? 'key'
          : key === ScalarType.BOOL
            ? 'boolKey(key)'
            : key === ScalarType.INT64 || key === ScalarType.SINT64 || key === ScalarType.SFIXED64
              ? 'int64Key(key, false)'
              : key === ScalarType.UINT64 || key === ScalarType.FIXED64
                ? 'int64Key(key, true)'
                : 'intKey(key)';
      const value =
        field.mapKind === 'message'
          ? writeChild(2, field.message, `record[key] as ${name(field.message)}_Shape`)
          : (() => {
              const scalar = field.mapKind === 'enum' ? ScalarType.INT32 : field.scalar;
              return [writeTag(2, wireTypeOf(scalar)), writeScalar(scalar, 'record[key]', field)];
            })();
      return [
        `{ const record = m.${local}; const keys = Object.keys(record); for (let i = 0; i < keys.length; i++) {`,
        `  const key = keys[i] as string; ${writeTag(n, WIRE_DELIMITED)} const at = w.fork();`,
        `  ${writeTag(1, wireTypeOf(key))} ${writeScalar(key, keyExpr, field)}`,
        ...value.map((l) => `  ${l}`),
        '  w.join(at);',
        '} }',
      ];
    }
  }
}

/** The object `create()` makes for `desc`, property for property in the same order. */
function zero(desc: DescMessage): string {
  const props = [`$typeName: ${JSON.stringify(desc.typeName)}`];
  for (const member of desc.members) {
    if (member.kind === 'oneof') {
      props.push(`${member.localName}: { case: undefined }`);
      continue;
    }
    switch (member.fieldKind) {
      case 'message':
        break;
      case 'list':
        props.push(`${member.localName}: []`);
        break;
      case 'map':
        props.push(`${member.localName}: {}`);
        break;
      case 'enum':
        if (member.presence === 2) props.push(`${member.localName}: ${String(member.enum.values[0]?.number ?? 0)}`);
        break;
      case 'scalar':
        if (member.presence === 2) props.push(`${member.localName}: ${scalarZero(member.scalar, member.longAsString)}`);
        break;
    }
  }
  return `{ ${props.join(', ')} }`;
}

function decoder(f: GeneratedFile, desc: DescMessage): Printable[] {
  const cases: string[] = [];
  for (const field of desc.fields) {
    cases.push(`      case ${field.number}:`, ...decodeField(field).map((l) => `        ${l}`), '        break;');
  }
  const type = `${name(desc)}_Shape`;
  return [
    `type ${type} = `,
    f.importShape(desc),
    `;\n\nfunction zero_${name(desc)}(): ${type} {\n  return ${zero(desc)};\n}\n\n`,
    `function decode_${name(desc)}(r: WireReader, length: number, depth: number, into?: ${type}): ${type} {\n`,
    `  depth = enterMessage(depth, ${JSON.stringify(desc.typeName)});\n`,
    `  const m = into ?? zero_${name(desc)}();\n`,
    '  const end = r.pos + length;\n',
    '  while (r.pos < end) {\n',
    '    const tag = r.tagNumber();\n',
    '    switch (tag >>> 3) {\n',
    cases.length > 0 ? `${cases.join('\n')}\n` : '',
    '      default:\n        r.unknownField(m, tag, depth);\n',
    '    }\n  }\n  return m;\n}\n',
  ];
}

function decodeField(field: DescField): string[] {
  const local = field.localName;
  switch (field.fieldKind) {
    case 'scalar':
    case 'enum': {
      const read = field.fieldKind === 'enum' ? 'r.int32()' : readScalar(field.scalar, field.utf8Validation, field.longAsString);
      if (field.oneof !== undefined) return [`m.${field.oneof.localName} = { case: ${JSON.stringify(local)}, value: ${read} };`];
      return [`m.${local} = ${read};`];
    }
    case 'message': {
      const child = name(field.message);
      if (field.oneof !== undefined) {
        const oneof = field.oneof.localName;
        return [
          `{ const o = m.${oneof}; m.${oneof} = { case: ${JSON.stringify(local)}, value: decode_${child}(r, r.uint32(), depth, o.case === ${JSON.stringify(local)} ? o.value : undefined) }; }`,
        ];
      }
      return [`m.${local} = decode_${child}(r, r.uint32(), depth, m.${local});`];
    }
    case 'list': {
      if (field.listKind === 'message') return [`m.${local}.push(decode_${name(field.message)}(r, r.uint32(), depth));`];
      const scalar = field.listKind === 'enum' ? ScalarType.INT32 : field.scalar;
      const read = readScalar(scalar, field.utf8Validation, field.listKind === 'scalar' ? field.longAsString : false);
      if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) return [`m.${local}.push(${read});`];
      return [
        `{ const items = m.${local}; if ((tag & 7) === ${WIRE_DELIMITED}) { const e = r.uint32() + r.pos; while (r.pos < e) items.push(${read}); } else items.push(${read}); }`,
      ];
    }
    case 'map': {
      const keyRead = readScalar(field.mapKey, field.utf8Validation, false);
      const keyZero = scalarZero(field.mapKey, false);
      let valueRead: string;
      let valueZero: string;
      switch (field.mapKind) {
        case 'message':
          valueRead = `decode_${name(field.message)}(r, r.uint32(), depth, val)`;
          valueZero = `zero_${name(field.message)}()`;
          break;
        case 'enum':
          valueRead = 'r.int32()';
          valueZero = String(field.enum.values[0]?.number ?? 0);
          break;
        case 'scalar':
          valueRead = readScalar(field.scalar, field.utf8Validation, false);
          valueZero = field.scalar === ScalarType.BYTES ? 'new Uint8Array(0)' : scalarZero(field.scalar, false);
          break;
      }
      return [
        `{ const record = m.${local}; let key: unknown; let val: (typeof record)[string] | undefined;`,
        '  const len = r.uint32(); const e = r.pos + len;',
        '  while (r.pos < e) {',
        '    const t = r.tagNumber();',
        `    if (t >>> 3 === 1) key = ${keyRead};`,
        `    else if (t >>> 3 === 2) val = ${valueRead};`,
        '    else r.skipTag(t, depth);',
        '  }',
        `  setOwn(record, String(key ?? ${keyZero}), val ?? ${valueZero}); }`,
      ];
    }
  }
}

function generateTs(schema: Schema): void {
  const messages = messagesOf(schema.files);
  for (const desc of messages) check(desc);
  const f = schema.generateFile(OUTPUT);
  f.print(
    `// @generated by protoc-gen-esper-wire (tools/protoc-gen-esper-wire.ts) from ${schema.files.map((file) => `${file.name}.proto`).join(', ')}.`,
  );
  f.print('// Do not edit: run `npm run gen`. Binary codecs byte-for-byte equal to protobuf-es toBinary / fromBinary.');
  f.print('/* eslint-disable */');
  f.print();
  // One fixed import of the runtime (relative to the generated file), whatever the contract uses.
  const up = OUTPUT.split('/')
    .slice(0, -1)
    .map(() => '..')
    .join('/');
  f.print(
    `import { EMPTY_BYTES, enterMessage, foreignMessage, hasOwn, setOwn, boolKey, intKey, int64Key, type WireCodec, type WireReader, type WireWriter } from "${up}/${RUNTIME_FROM_ROOT}";`,
  );
  f.print();
  for (const desc of messages) {
    f.print(...decoder(f, desc));
    f.print(...encoder(f, desc));
  }
  const entries: Printable[] = [];
  for (const desc of messages) {
    entries.push('  { schema: ', f.importSchema(desc), `, encode: encode_${name(desc)}, decode: decode_${name(desc)} },\n`);
  }
  f.print('/** The codec of every message above, with its schema. */');
  f.print('export const wireCodecs: readonly WireCodec[] = [\n', ...entries, '];');
}

export const protocGenEsperWire = createEcmaScriptPlugin({
  name: 'protoc-gen-esper-wire',
  version: 'v1',
  generateTs,
});

runNodeJs(protocGenEsperWire);
