/**
 * What a Tamiyo policy decides, before the risk engine shapes it. The types carry every id
 * a command needs: a germinate names its seed, site and blueprint, a cull its seed, and an
 * {@link Id} cannot be blank, so the command builder needs no dependency check of its own.
 */
import { optionChecks } from '../core/index.js';

declare const idBrand: unique symbol;

/** A non-blank seed, site or blueprint id; made by {@link toId}. */
export type Id = string & { readonly [idBrand]: true };

const idCheck = optionChecks('toId');

/**
 * `value` as an {@link Id}.
 * @throws EsperError INVALID_ARGUMENT naming `field` when `value` is empty or blank.
 */
export function toId(value: string, field: string): Id {
  if (value.trim().length === 0) idCheck.fail(field, 'a non-blank id', value);
  return value as Id;
}

/** `value` as an {@link Id}, or undefined when it is blank. */
export function idOrUndefined(value: string): Id | undefined {
  return value.trim().length === 0 ? undefined : (value as Id);
}

/** What a policy can propose. */
export const DecisionKind = {
  WAIT: 'wait',
  GERMINATE: 'germinate',
  CULL: 'cull',
  OPTIMIZER: 'optimizer',
  PAUSE: 'pause',
  BREAKER_OPEN: 'breaker_open',
  BREAKER_CLOSE: 'breaker_close',
} as const;

/** Union of {@link DecisionKind} values. */
export type DecisionKind = (typeof DecisionKind)[keyof typeof DecisionKind];

/** Every {@link DecisionKind} value. */
export const DECISION_KINDS: ReadonlySet<string> = new Set(Object.values(DecisionKind));

/** Fields any decision may carry. */
interface DecisionFields {
  readonly seedId?: Id;
  readonly siteId?: Id;
  readonly blueprintId?: Id;
  /** From the policy's risk head, in [0, 1]. */
  readonly policyRiskScore?: number;
  /** Optimizer learning-rate delta. */
  readonly paramDelta?: number;
}

/** Grow a new seed: all three ids are required. */
export interface GerminateDecision extends DecisionFields {
  readonly kind: typeof DecisionKind.GERMINATE;
  readonly seedId: Id;
  readonly siteId: Id;
  readonly blueprintId: Id;
}

/** Cull a seed. */
export interface CullDecision extends DecisionFields {
  readonly kind: typeof DecisionKind.CULL;
  readonly seedId: Id;
}

/** A decision that needs no id (a pause may name a seed). */
export interface PlainDecision extends DecisionFields {
  readonly kind: Exclude<DecisionKind, typeof DecisionKind.GERMINATE | typeof DecisionKind.CULL>;
}

/** What a policy wants, before risk. */
export type ProposedDecision = GerminateDecision | CullDecision | PlainDecision;
