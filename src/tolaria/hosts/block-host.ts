/**
 * {@link BlockHost}: a {@link HostModel} that runs a fixed sequence of blocks and passes
 * the activation at each seed site through the hook attached there (identity when none).
 * Built by `HostBuilder`; not constructed directly.
 */
import { create } from '@bufbuild/protobuf';
import { ErrorCode, EsperError } from '../../core/index.js';
import { HostDescriptorSchema, type HostDescriptor, type SeedSiteDescriptor } from '../../leyline/index.js';
import type { tf } from '../../tensor/index.js';
import type { ForwardOptions, HostModel, SeedSiteHook } from '../host-model.js';
import type { HostBlock } from './blocks.js';

/** Everything a {@link BlockHost} is made of (assembled by `HostBuilder`). */
export interface BlockHostParts {
  readonly hostId: string;
  readonly family: string;
  readonly inputShape: readonly number[];
  readonly blocks: readonly HostBlock[];
  /** Site descriptors in host order; `depth` is the index of the block each follows. */
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
  /** Site ids following each block, by block index. */
  private readonly sitesAfterBlock: ReadonlyMap<number, readonly string[]>;
  private readonly siteOrder: readonly string[];
  private readonly hookMap = new Map<string, SeedSiteHook>();
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
    for (const site of parts.sites) {
      const list = after.get(site.depth) ?? [];
      list.push(site.siteId);
      after.set(site.depth, list);
    }
    this.sitesAfterBlock = after;
    this.siteOrder = parts.sites.map((s) => s.siteId);
  }

  get hooks(): ReadonlyMap<string, SeedSiteHook> {
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
    let x = inputs;
    for (const [index, block] of this.blocks.entries()) {
      x = block.apply(x);
      for (const siteId of this.sitesAfterBlock.get(index) ?? []) {
        const hook = this.hookMap.get(siteId);
        if (hook === undefined || options.bypassSites?.has(siteId) === true) continue;
        const out = hook.apply(x, context);
        // Checked on every call, not only the first: it is a shape comparison, and a hook
        // may behave differently per batch size or per training flag.
        if (!sameShape(out.shape, x.shape)) {
          throw new EsperError(
            ErrorCode.TOLARIA_SITE_SHAPE_MISMATCH,
            `seed site '${siteId}' of host '${this.descriptor.hostId}': hook returned ${formatShape(out.shape)} for an activation of ${formatShape(x.shape)}`,
            { details: { siteId, hostId: this.descriptor.hostId, expected: formatShape(x.shape), actual: formatShape(out.shape) } },
          );
        }
        x = out;
      }
    }
    return x;
  }

  attach(siteId: string, hook: SeedSiteHook): void {
    this.assertLive('attach');
    this.assertKnownSite(siteId);
    const candidate = hook as Partial<SeedSiteHook> | null | undefined;
    if (typeof candidate?.apply !== 'function' || typeof candidate.trainableVariables !== 'function') {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `seed site '${siteId}': hook must implement apply() and trainableVariables()`, {
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
  detach(siteId: string): SeedSiteHook | undefined {
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
