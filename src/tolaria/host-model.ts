/**
 * Host models: the networks seeds grow into. A host is a sequence of named blocks with
 * named seed sites after some of them. A site sees the activation flowing through it and
 * hands it to the hook attached there (Kasmina's graft), which returns the activation to
 * continue with — typically `x + alpha·seed(x)`, with `seed(stopGradient(x))` while the
 * seed trains in isolation. With no hook a site is the identity.
 */
import type { HostDescriptor } from '../leyline/index.js';
import type { tf } from '../tensor/index.js';

/** What Kasmina attaches at a seed site. */
export interface SeedSiteHook {
  /**
   * Called inside the host's forward pass (inside the caller's `tf.tidy`) with the site's
   * activation; returns the activation the host continues with, of the same shape.
   */
  apply(activation: tf.Tensor, context: { readonly training: boolean }): tf.Tensor;
  /** The hook's trainable variables (trained with the host's optimizer). */
  trainableVariables(): readonly tf.Variable[];
}

/** Options of {@link HostModel.forward}. */
export interface ForwardOptions {
  readonly training: boolean;
  /** Sites whose hook is skipped (the site is the identity), for counterfactual passes. */
  readonly bypassSites?: ReadonlySet<string>;
}

/** A host model with seed sites. */
export interface HostModel {
  /** Architecture, sites and shapes (the contract other subsystems read). */
  readonly descriptor: HostDescriptor;
  /**
   * Logits `[batch, numClasses]` for inputs `[batch, ...inputShape]`. Allocates tensors:
   * call inside `tf.tidy`.
   */
  forward(inputs: tf.Tensor, options: ForwardOptions): tf.Tensor;
  /** The host's own variables, with stable names (`<host>/<block>/<param>`). */
  readonly variables: readonly tf.Variable[];
  /** Attaches `hook` at `siteId` (throws a typed error for an unknown or occupied site). */
  attach(siteId: string, hook: SeedSiteHook): void;
  /** Removes the hook at `siteId`, returning it (the caller disposes it). */
  detach(siteId: string): SeedSiteHook | undefined;
  /** Hooks currently attached, by site id. */
  readonly hooks: ReadonlyMap<string, SeedSiteHook>;
  /** Host variables plus every attached hook's variables, host first. */
  trainableVariables(): tf.Variable[];
  /** Frees the host's variables (not the hooks'). Idempotent. */
  dispose(): void;
}
