/**
 * Binary encoding and decoding of Leyline messages through the generated codec
 * (`gen/esper/leyline/v1/wire_codec.ts`, from `tools/protoc-gen-esper-wire.ts`): the same
 * bytes as protobuf-es `toBinary`, messages equal to `fromBinary`'s, failing on the same
 * inputs, at a fraction of the cost. Signed bytes, bus entries and stored records are all
 * written and read here (core's strict codec adds the contract checks on top).
 *
 * A schema the generator did not see (none of Leyline's; a test's own message) goes
 * through protobuf-es itself, so these functions take any schema.
 */
import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import { wireCodecs } from './gen/esper/leyline/v1/wire_codec.js';
import { encodeWith, WireReader, type WireCodec } from './wire-runtime.js';

const codecs: ReadonlyMap<DescMessage, WireCodec> = new Map(wireCodecs.map((codec) => [codec.schema, codec]));

/** Whether `schema` has a generated codec (every Leyline message and the well-known types they use). */
export function hasWireCodec(schema: DescMessage): boolean {
  return codecs.has(schema);
}

/** `toBinary(schema, message)`, byte for byte. Throws where `toBinary` throws. */
export function encodeBinary<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array {
  const codec = codecs.get(schema);
  if (codec === undefined) return toBinary(schema, message);
  return encodeWith(codec.encode, message as never);
}

/** A decoded message and whether unknown fields were kept on it (at any depth). */
export interface DecodedBinary<Desc extends DescMessage> {
  readonly message: MessageShape<Desc>;
  /** `true` when some `$unknown` is set in the message tree (or when that was not tracked). */
  readonly unknownFields: boolean;
}

/**
 * `fromBinary(schema, bytes)`: an equal message, or an error on the same inputs. Also says
 * whether unknown fields were kept, so a strict caller need not walk the message for them.
 */
export function decodeBinary<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): DecodedBinary<Desc> {
  const codec = codecs.get(schema);
  if (codec === undefined) return { message: fromBinary(schema, bytes), unknownFields: true };
  const reader = new WireReader(bytes);
  const message = codec.decode(reader, bytes.byteLength, 0) as MessageShape<Desc>;
  return { message, unknownFields: reader.unknownSeen };
}
