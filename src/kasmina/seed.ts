/**
 * One seed as the executor holds it: who it is, where it is in its lifecycle, and what is
 * known about it, grouped by concern (kernel, blend, progress, gradients, contribution,
 * isolation, fate). The seed driver and the command dispatcher change these groups; the
 * executor state exports and restores them.
 */
import type { EventInput } from '../core/index.js';
import type { SeedSiteDescriptor } from '../leyline/index.js';
import type { tf } from '../tensor/index.js';
import type { BlendPlan } from './blending.js';
import type { FetchedSeedKernel } from './kernel-fetcher.js';
import { SeedLifecycle } from './lifecycle.js';
import type { PrefetchTicket } from './prefetch.js';
import type { SeedSlot } from './seed-slot.js';

/** Outcome of loading a seed's kernel: the module, or why there is none (G1 fails with it as `kernel_error`). */
export type KernelLoad = { readonly ok: true; readonly fetched: FetchedSeedKernel } | { readonly ok: false; readonly error: string };

/** The seed's kernel: how it is being loaded, and the slot it is grafted in. */
export interface SeedKernel {
  /** The slot at the seed's site while grafted (TRAINING until culled or the end of the run). */
  slot: SeedSlot | undefined;
  /** Variables of the grafted module; kept after teardown so G5 can check they were freed. */
  variables: readonly tf.Variable[];
  /** The prefetch request awaiting Urza's answer. */
  prefetch: PrefetchTicket | undefined;
  /** The prefetch request and the fetch its answer starts, until both are over. */
  loading: Promise<void> | undefined;
  /** The fetch started by the prefetch answer is running. */
  fetching: boolean;
  /** What that load gave, grafted (or failed) by the next `advance`. */
  loaded: KernelLoad | undefined;
  /** Latency of the fetch that loaded the kernel (lock wait + load + rebuild), in ms. */
  latencyMs: number;
  /** Trainable parameters of the grafted module (kept after a cull, for the seed's report). */
  parameters: number;
}

/** How the seed is mixed into its site. */
export interface SeedBlend {
  readonly plan: BlendPlan;
  /** Scheduled alpha in [0, 1]. */
  alpha: number;
  /** Steps of the alpha ramp taken. */
  steps: number;
}

/** The seed's position within its stage. */
export interface SeedProgress {
  /** Steps counted in the current stage while not paused. */
  activeSteps: number;
  paused: boolean;
  /** Kasmina's training-loss EWMA when the seed was germinated (G2's baseline in SHADOWING). */
  lossAtGermination: number | undefined;
}

/** The norms of the seed's gradient the steps reported (G2 reads them). */
export interface SeedGradients {
  sum: number;
  count: number;
  /** Every reported norm was finite. */
  finite: boolean;
  /** The last reported norm (NaN when it was not finite). */
  last: number;
}

/** The seed's last counterfactual contribution. */
export interface SeedContribution {
  /** Validation accuracy with the seed minus with its site bypassed (a fraction). */
  value: number | undefined;
  /** Step at which it was measured; -1 before a measurement. */
  step: number;
}

/** The seed's isolation record. */
export interface SeedIsolation {
  violations: number;
  /** Relative gradient leak of the last direct check. */
  lastLeak: number;
}

/** How the seed's story ends. */
export interface SeedFate {
  /** Why the seed was culled; '' unless it was. */
  cullReason: string;
  /** Step until which the seed's site is embargoed after a cull. */
  embargoUntilStep: number;
  /** Removed after its packet of this step (reset to DORMANT or terminated). */
  retire: boolean;
}

/** Who a seed is: fixed at germination. */
export interface SeedIdentity {
  readonly seedId: string;
  readonly siteId: string;
  readonly site: SeedSiteDescriptor;
  readonly blueprintId: string;
  /** The GERMINATE command that created it. */
  readonly commandId: string;
  /** Epoch the seed was germinated in (its age is counted from it). */
  readonly germinatedEpoch: number;
}

/** One seed held by the executor. */
export interface Seed extends SeedIdentity {
  readonly lifecycle: SeedLifecycle;
  readonly kernel: SeedKernel;
  readonly blend: SeedBlend;
  readonly progress: SeedProgress;
  readonly gradients: SeedGradients;
  readonly contribution: SeedContribution;
  readonly isolation: SeedIsolation;
  readonly fate: SeedFate;
  /** Events for this seed's next packet. */
  readonly events: EventInput[];
}

/** What a new seed is made from. */
export interface NewSeedInput extends SeedIdentity {
  readonly plan: BlendPlan;
  readonly lossAtGermination: number | undefined;
  /** A restored seed's lifecycle. @default a new one, in DORMANT */
  readonly lifecycle?: SeedLifecycle;
}

/** A seed with nothing measured yet. */
export function newSeed(input: NewSeedInput): Seed {
  return {
    seedId: input.seedId,
    siteId: input.siteId,
    site: input.site,
    blueprintId: input.blueprintId,
    commandId: input.commandId,
    germinatedEpoch: input.germinatedEpoch,
    lifecycle: input.lifecycle ?? new SeedLifecycle(),
    kernel: {
      slot: undefined,
      variables: [],
      prefetch: undefined,
      loading: undefined,
      fetching: false,
      loaded: undefined,
      latencyMs: 0,
      parameters: 0,
    },
    blend: { plan: input.plan, alpha: 0, steps: 0 },
    progress: { activeSteps: 0, paused: false, lossAtGermination: input.lossAtGermination },
    gradients: { sum: 0, count: 0, finite: true, last: 0 },
    contribution: { value: undefined, step: -1 },
    isolation: { violations: 0, lastLeak: 0 },
    fate: { cullReason: '', embargoUntilStep: 0, retire: false },
    events: [],
  };
}

/** Records one reported gradient norm of the seed's variables. */
export function recordGradientNorm(gradients: SeedGradients, norm: number): void {
  gradients.last = norm;
  if (!Number.isFinite(norm)) {
    gradients.finite = false;
    return;
  }
  gradients.sum += norm;
  gradients.count += 1;
}

/** Mean of the finite norms recorded; 0 before any. */
export function meanGradientNorm(gradients: SeedGradients): number {
  return gradients.count === 0 ? 0 : gradients.sum / gradients.count;
}
