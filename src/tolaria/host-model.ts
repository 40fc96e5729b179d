/**
 * Host models: the networks seeds grow into. A host is a sequence of named blocks with
 * named seed sites. Two kinds of hook, one per kind of site:
 *
 * - DENSE and CONV sites follow a block: the site hands the activation to its
 *   {@link SeedSiteHook}, which returns the activation to continue with — typically
 *   `x + alpha·seed(x)`, with `seed(stopGradient(x))` while the seed trains in isolation.
 * - WIDEN sites belong to a dense block ℓ followed by a dense block ℓ+1: the host keeps
 *   block ℓ's input `u`, and when it reaches block ℓ+1 it computes the pre-activation `z`,
 *   adds what the site's {@link WidenSiteHook} *contributes* from `u`, then applies the
 *   activation — layer ℓ widened by the seed's units.
 *
 * With no hook (or the site bypassed) a site changes nothing.
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

/**
 * What Kasmina attaches at a WIDEN site. It returns a *contribution*, never the continued
 * activation: the host adds it to the next dense block's pre-activation.
 */
export interface WidenSiteHook {
  /**
   * Called inside the host's forward pass with `input` `[batch, ...site.shape]`, the input
   * of the site's block; returns `[batch, ...site.output_shape]`, added to the next block's
   * pre-activation.
   */
  contribute(input: tf.Tensor, context: { readonly training: boolean }): tf.Tensor;
  /** The hook's trainable variables (trained with the host's optimizer). */
  trainableVariables(): readonly tf.Variable[];
}

/**
 * A hook of either kind. The host calls the method its site's kind needs (`apply` at DENSE
 * and CONV sites, `contribute` at WIDEN sites) and refuses, at `attach`, a hook without it.
 */
export type SiteHook = SeedSiteHook | WidenSiteHook;

/** Options of {@link HostModel.forward}. */
export interface ForwardOptions {
  readonly training: boolean;
  /**
   * Sites whose hook is skipped, for counterfactual passes: a DENSE or CONV site is the
   * identity, a WIDEN site contributes nothing.
   */
  readonly bypassSites?: ReadonlySet<string>;
  /**
   * Gradient probes at WIDEN sites, by site id (with or without a hook there): the host
   * hands each the site's input `u` `[batch, ...site.shape]` and adds the tensor it returns
   * (`[batch, ...site.output_shape]`, zeros for a probe) to the next block's pre-activation —
   * so the loss's gradient with respect to that addend is ∂L/∂z there. The trainer serves
   * the executor's gradient probes with it.
   */
  readonly widenProbes?: ReadonlyMap<string, (input: tf.Tensor) => tf.Tensor>;
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
  /**
   * Attaches `hook` at `siteId` (throws a typed error for an unknown or occupied site, or a
   * hook without the method the site's kind needs).
   */
  attach(siteId: string, hook: SiteHook): void;
  /** Removes the hook at `siteId`, returning it (the caller disposes it). */
  detach(siteId: string): SiteHook | undefined;
  /** Hooks currently attached, by site id. */
  readonly hooks: ReadonlyMap<string, SiteHook>;
  /** Host variables plus every attached hook's variables, host first. */
  trainableVariables(): tf.Variable[];
  /** Frees the host's variables (not the hooks'). Idempotent. */
  dispose(): void;
}
