/**
 * Canonical bytes of signed messages (spec 01 "Canonical bytes and signing").
 *
 * A signed message carries a `security: CommandSecurity` field and holds no maps anywhere
 * inside, so its protobuf binary encoding is canonical in every language. The signed
 * bytes are that encoding with `security.signature` emptied.
 */
import { clone, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import type { CommandSecurity } from './gen/esper/leyline/v1/security_pb.js';
import type { AdaptationCommandSchema } from './gen/esper/leyline/v1/command_pb.js';
import type { PolicyUpdateSchema } from './gen/esper/leyline/v1/policy_pb.js';
import type { BSDSSchema } from './gen/esper/leyline/v1/blueprint_pb.js';

/** Schemas of the messages that carry a `CommandSecurity` signature. */
export type SignedMessageSchema =
  | typeof AdaptationCommandSchema
  | typeof PolicyUpdateSchema
  | typeof BSDSSchema;

/** A message of one of the {@link SignedMessageSchema} types. */
export type SignedMessage = MessageShape<SignedMessageSchema> & { security?: CommandSecurity };

const EMPTY = new Uint8Array(0);

/**
 * The bytes a signature covers: the message encoded with `security.signature` empty.
 * The message itself is not modified.
 */
export function canonicalBytes<Desc extends DescMessage & SignedMessageSchema>(
  schema: Desc,
  message: MessageShape<Desc>,
): Uint8Array {
  const security = (message as SignedMessage).security;
  if (security === undefined || security.signature.length === 0) {
    return toBinary(schema, message);
  }
  const copy = clone(schema, message) as SignedMessage;
  (copy.security as CommandSecurity).signature = EMPTY;
  return toBinary(schema, copy as MessageShape<Desc>);
}
