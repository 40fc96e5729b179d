/**
 * {@link BlockHost}: a {@link HostModel} that runs a fixed sequence of blocks and passes
 * the activation at each DENSE or CONV seed site through the hook attached there (identity
 * when none); a WIDEN site's hook contributes to the next weighted block's pre-activation
 * (`widen-path.ts`). Built by `HostBuilder`; not constructed directly.
 */
import { create, equals } from '@bufbuild/protobuf';
import { ErrorCode, EsperError } from '../../core/index.js';
import {
  ConvWidenPathSchema,
  HostDescriptorSchema,
  isWidenSite,
  siteOutputShape,
  type HostDescriptor,
  type SeedSiteDescriptor,
} from '../../leyline/index.js';
import { tf } from '../../tensor/index.js';
import type { ForwardOptions, HostModel, SeedSiteHook, SiteHook, WidenSiteHook } from '../host-model.js';
import type { HostBlock } from './blocks.js';
import { widenPathOf } from './widen-path.js';

/** The input of a widened block and its active WIDEN sites, waiting for the block they add to. */
interface Widening {
  readonly input: tf.Tensor;
  readonly siteIds: readonly string[];
}

/** Everything a {@link BlockHost} is made of (assembled by `HostBuilder`). */
export interface BlockHostParts {
  readonly hostId: string;
  readonly family: string;
  readonly inputShape: readonly number[];
  readonly blocks: readonly HostBlock[];
  /**
   * Site descriptors in host order; `depth` is the index of the block each follows (of the
   * block a WIDEN site widens, whose path to the next weighted block `widen-path.ts` reads).
   */
  readonly sites: readonly SeedSiteDescriptor[];
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

const formatShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** A host made of named blocks with named seed sites. */
export class BlockHost implements HostModel {
  /**
   * The host's descriptor. One instance for the host's life: treat it as read-only (use
   * `clone(HostDescriptorSchema, …)` to derive a modified copy).
   */
  readonly descriptor: HostDescriptor;
  readonly variables: readonly tf.Variable[];
  /** The blocks in forward order. */
  readonly blocks: readonly HostBlock[];
  private readonly inputShape: readonly number[];
  /** DENSE and CONV site ids following each block, by block index. */
  private readonly sitesAfterBlock: ReadonlyMap<number, readonly string[]>;
  /** WIDEN site ids of each block (whose input they read), by block index. */
  private readonly widenSitesOfBlock: ReadonlyMap<number, readonly string[]>;
  /** The block whose pre-activation a widened block's WIDEN sites add to, by widened block index. */
  private readonly widenTargets = new Map<number, number>();
  private readonly sitesById: ReadonlyMap<string, SeedSiteDescriptor>;
  private readonly siteOrder: readonly string[];
  private readonly hookMap = new Map<string, SiteHook>();
  private disposed = false;

  /** @internal Use `HostBuilder`. */
  constructor(parts: BlockHostParts) {
    const last = parts.blocks[parts.blocks.length - 1];
    if (last === undefined || last.outputShape.length !== 1) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host '${parts.hostId}' must end in a block with a rank-1 output (the logits)`, {
        details: { field: 'blocks', hostId: parts.hostId },
      });
    }
    this.blocks = [...parts.blocks];
    this.inputShape = [...parts.inputShape];
    this.variables = this.blocks.flatMap((b) => b.variables);
    const parameterCount = this.variables.reduce((n, v) => n + v.size, 0);
    this.descriptor = create(HostDescriptorSchema, {
      hostId: parts.hostId,
      family: parts.family,
      inputShape: [...parts.inputShape],
      numClasses: last.outputShape[0] as number,
      sites: [...parts.sites],
      parameterCount: BigInt(parameterCount),
    });
    const after = new Map<number, string[]>();
    const widen = new Map<number, string[]>();
    for (const site of parts.sites) {
      if (isWidenSite(site)) this.widenTargets.set(site.depth, widenTarget(parts, site));
      const byBlock = isWidenSite(site) ? widen : after;
      const list = byBlock.get(site.depth) ?? [];
      list.push(site.siteId);
      byBlock.set(site.depth, list);
    }
    this.sitesAfterBlock = after;
    this.widenSitesOfBlock = widen;
    this.sitesById = new Map(parts.sites.map((s) => [s.siteId, s]));
    this.siteOrder = parts.sites.map((s) => s.siteId);
  }

  get hooks(): ReadonlyMap<string, SiteHook> {
    return this.hookMap;
  }

  /** Whether {@link dispose} has run. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  forward(inputs: tf.Tensor, options: ForwardOptions): tf.Tensor {
    this.assertLive('forward');
    if (inputs.rank !== this.inputShape.length + 1 || !sameShape(inputs.shape.slice(1), this.inputShape)) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `host '${this.descriptor.hostId}': inputs must be [batch, ${this.inputShape.join(', ')}], got ${formatShape(inputs.shape)}`,
        { details: { field: 'inputs', hostId: this.descriptor.hostId } },
      );
    }
    const context = { training: options.training };
    const active = (siteId: string): SiteHook | undefined =>
      options.bypassSites?.has(siteId) === true ? undefined : this.hookMap.get(siteId);
    let x = inputs;
    /** Widened blocks' inputs and active WIDEN hooks, by the index of the block they add to. */
    const pending = new Map<number, Widening>();
    for (const [index, block] of this.blocks.entries()) {
      const input = x;
      const widening = pending.get(index);
      x =
        widening === undefined
          ? block.apply(x)
          : this.widenedApply(block, x, widening, { ...context, active, probes: options.widenProbes });
      const widenIds = (this.widenSitesOfBlock.get(index) ?? []).filter(
        (id) => active(id) !== undefined || options.widenProbes?.has(id) === true,
      );
      if (widenIds.length > 0) pending.set(this.widenTargets.get(index) as number, { input, siteIds: widenIds });
      for (const siteId of this.sitesAfterBlock.get(index) ?? []) {
        const hook = active(siteId);
        if (hook === undefined) continue;
        const out = (hook as SeedSiteHook).apply(x, context);
        // Checked on every call, not only the first: it is a shape comparison, and a hook
        // may behave differently per batch size or per training flag.
        this.assertHookShape(siteId, out.shape, x.shape, 'an activation of');
        x = out;
      }
    }
    return x;
  }

  /** `block` (dense or conv2d) with the active WIDEN hooks' contributions (and any probes' addends) added to its pre-activation. */
  private widenedApply(
    block: HostBlock,
    x: tf.Tensor,
    widening: Widening,
    context: {
      readonly training: boolean;
      readonly active: (siteId: string) => SiteHook | undefined;
      readonly probes: ForwardOptions['widenProbes'];
    },
  ): tf.Tensor {
    const layer = (block.dense ?? block.conv) as NonNullable<HostBlock['dense']>;
    let z = layer.preActivation(x);
    for (const siteId of widening.siteIds) {
      const hook = context.active(siteId) as WidenSiteHook | undefined;
      const addends = [
        ...(hook === undefined ? [] : [hook.contribute(widening.input, { training: context.training })]),
        ...(context.probes?.has(siteId) === true ? [(context.probes.get(siteId) as (u: tf.Tensor) => tf.Tensor)(widening.input)] : []),
      ];
      for (const addend of addends) {
        this.assertHookShape(siteId, addend.shape, z.shape, 'a pre-activation of');
        z = tf.add(z, addend);
      }
    }
    return layer.activate(z);
  }

  private assertHookShape(siteId: string, actual: readonly number[], expected: readonly number[], what: string): void {
    if (sameShape(actual, expected)) return;
    throw new EsperError(
      ErrorCode.TOLARIA_SITE_SHAPE_MISMATCH,
      `seed site '${siteId}' of host '${this.descriptor.hostId}': hook returned ${formatShape(actual)} for ${what} ${formatShape(expected)}`,
      { details: { siteId, hostId: this.descriptor.hostId, expected: formatShape(expected), actual: formatShape(actual) } },
    );
  }

  attach(siteId: string, hook: SiteHook): void {
    this.assertLive('attach');
    this.assertKnownSite(siteId);
    const method = isWidenSite(this.sitesById.get(siteId) as SeedSiteDescriptor) ? 'contribute' : 'apply';
    const candidate = hook as Partial<SeedSiteHook & WidenSiteHook> | null | undefined;
    if (typeof candidate?.[method] !== 'function' || typeof candidate.trainableVariables !== 'function') {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `seed site '${siteId}': hook must implement ${method}() and trainableVariables()`, {
        details: { field: 'hook', siteId },
      });
    }
    if (this.hookMap.has(siteId)) {
      throw new EsperError(ErrorCode.INVALID_STATE, `seed site '${siteId}' of host '${this.descriptor.hostId}' already has a hook`, {
        details: { siteId, hostId: this.descriptor.hostId },
      });
    }
    this.hookMap.set(siteId, hook);
  }

  /** Also allowed after {@link dispose}, so the caller can still take its hooks back. */
  detach(siteId: string): SiteHook | undefined {
    this.assertKnownSite(siteId);
    const hook = this.hookMap.get(siteId);
    this.hookMap.delete(siteId);
    return hook;
  }

  /** Host variables, then the attached hooks' variables in site order. */
  trainableVariables(): tf.Variable[] {
    const out = [...this.variables];
    for (const siteId of this.siteOrder) {
      const hook = this.hookMap.get(siteId);
      if (hook !== undefined) out.push(...hook.trainableVariables());
    }
    return out;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const variable of this.variables) variable.dispose();
  }

  private assertLive(operation: string): void {
    if (this.disposed) {
      throw new EsperError(ErrorCode.INVALID_STATE, `host '${this.descriptor.hostId}' is disposed (${operation})`, {
        details: { hostId: this.descriptor.hostId, operation },
      });
    }
  }

  private assertKnownSite(siteId: string): void {
    if (!this.siteOrder.includes(siteId)) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `host '${this.descriptor.hostId}' has no seed site '${siteId}' (sites: ${this.siteOrder.join(', ') || 'none'})`,
        { details: { field: 'siteId', siteId, hostId: this.descriptor.hostId } },
      );
    }
  }
}

/**
 * The index of the block a WIDEN site adds to; the site's shapes and conv path must be the
 * ones its block and the blocks after it give (`widen-path.ts`).
 */
function widenTarget(parts: BlockHostParts, site: SeedSiteDescriptor): number {
  const block = parts.blocks[site.depth];
  const resolved = widenPathOf(parts.blocks, site.depth);
  const path = resolved.ok ? resolved.path : undefined;
  const samePath =
    path?.convWiden === undefined || site.convWiden === undefined
      ? path?.convWiden === site.convWiden
      : equals(ConvWidenPathSchema, path.convWiden, site.convWiden);
  if (
    path === undefined ||
    block === undefined ||
    !sameShape(site.shape, block.inputShape) ||
    !sameShape(siteOutputShape(site), path.outputShape) ||
    !samePath
  ) {
    const why = resolved.ok ? 'needs shapes and a conv path matching its blocks' : resolved.reason;
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host '${parts.hostId}': WIDEN site '${site.siteId}' ${why}`, {
      details: { field: 'sites', siteId: site.siteId, hostId: parts.hostId },
    });
  }
  return path.target;
}
