/** Building a signed `PolicyUpdate` that carries a GNN's weights (what Simic emits, reference §15.6). */
import { create } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { optionChecks, systemClock, type Clock } from '../core/index.js';
import { PolicyArchitectureSchema, PolicyUpdateSchema, type PolicyUpdate, type PolicyValidationSummary } from '../leyline/index.js';
import type { HmacSigner, SignOptions } from '../security/index.js';
import type { TamiyoGnn } from './gnn.js';
import { POLICY_ARCHITECTURE_ID, POLICY_ARCHITECTURE_VERSION, policyDigest, serialisePolicy } from './policy-weights.js';

/** `PolicyUpdate.version` (message schema version) written by {@link buildPolicyUpdate}. */
export const POLICY_UPDATE_MESSAGE_VERSION = 1;

/** Options of {@link buildPolicyUpdate}. */
export interface BuildPolicyUpdateOptions {
  readonly policyId: string;
  readonly trainingRunId: string;
  /** `tamiyo_policy_version` and the payload's version label. */
  readonly version: string;
  readonly signer: HmacSigner;
  /** The validator's verdict to ship with the weights. @default none */
  readonly validation?: PolicyValidationSummary;
  /** Stamps `issued_at`. @default systemClock */
  readonly clock?: Clock;
  /** Nonce and key id of the signature. @default a random nonce, the ring's active key */
  readonly sign?: SignOptions;
}

/**
 * A signed {@link PolicyUpdate} carrying `gnn`'s weights (what Simic emits, reference
 * §15.6): architecture id/version, payload from {@link serialisePolicy}, checksum
 * {@link policyDigest} of it, then signed over the canonical bytes.
 */
export function buildPolicyUpdate(gnn: TamiyoGnn, options: BuildPolicyUpdateOptions): PolicyUpdate {
  const check = optionChecks('BuildPolicyUpdateOptions');
  for (const field of ['policyId', 'trainingRunId'] as const) check.nonEmptyString(field, options[field]);
  const payload = serialisePolicy(gnn, { version: options.version });
  const update = create(PolicyUpdateSchema, {
    version: POLICY_UPDATE_MESSAGE_VERSION,
    policyId: options.policyId,
    trainingRunId: options.trainingRunId,
    issuedAt: timestampFromMs((options.clock ?? systemClock).wallMs()),
    tamiyoPolicyVersion: options.version,
    payload,
    architecture: create(PolicyArchitectureSchema, { id: POLICY_ARCHITECTURE_ID, version: POLICY_ARCHITECTURE_VERSION }),
    checksum: policyDigest(payload),
    ...(options.validation === undefined ? {} : { validation: options.validation }),
  });
  return options.signer.sign(PolicyUpdateSchema, update, options.sign);
}
