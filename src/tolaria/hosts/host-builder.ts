/**
 * {@link HostBuilder}: describes a host as a sequence of named blocks with named seed
 * sites, checks shapes as blocks are added, and creates the variables at `build()`.
 *
 * ```ts
 * const host = new HostBuilder({ hostId: 'mlp', family: 'mlp', inputShape: [784], seed: 7 })
 *   .dense(256, 'relu', { name: 'hidden1' }).site('hidden1')
 *   .dense(10, 'linear', { name: 'head' })
 *   .build();
 * ```
 *
 * Determinism: block `i` draws its initial weights from `seededRng(seed).fork(i)`, so the
 * same seed and architecture give bit-identical weights, and a block's weights do not
 * depend on the sizes of the blocks before it.
 */
import { create } from '@bufbuild/protobuf';
import { ErrorCode, EsperError, optionChecks } from '../../core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind, type SeedSiteDescriptor } from '../../leyline/index.js';
import { seededRng, tf, type Initializer } from '../../tensor/index.js';
import {
  Activation,
  BlockKind,
  conv2dSpec,
  defaultInitializer,
  denseSpec,
  flattenSpec,
  maxPoolSpec,
  type BlockSpec,
  type HostBlock,
  type Padding,
} from './blocks.js';
import { BlockHost } from './block-host.js';
import { widenPathOf } from './widen-path.js';

/** Options of {@link HostBuilder}. */
export interface HostBuilderOptions {
  /**
   * Prefix of every variable name (`<hostId>/<block>/<param>`). Must be unique among live
   * hosts: the tfjs engine refuses two variables with one name.
   */
  readonly hostId: string;
  /**
   * Host family recorded in the descriptor.
   * @default 'custom'
   */
  readonly family?: string;
  /** Per-example input shape, batch excluded (`[784]`, `[28, 28, 1]`). */
  readonly inputShape: readonly number[];
  /** Seed of the weight initialisation (non-negative safe integer). */
  readonly seed: number;
}

/** Options of {@link HostBuilder.dense}. */
export interface DenseOptions {
  /**
   * Block name (variable names and site descriptors use it).
   * @default `dense<n>` (n counts dense blocks from 1)
   */
  readonly name?: string;
  /**
   * Kernel initialiser.
   * @default He normal for ReLU, Glorot uniform otherwise
   */
  readonly initializer?: Initializer;
  /**
   * Add a bias (initialised to zeros).
   * @default true
   */
  readonly useBias?: boolean;
}

/** Options of {@link HostBuilder.conv2d}. */
export interface Conv2dOptions extends DenseOptions {
  /**
   * Side of the square kernel, in pixels.
   * @default 3
   */
  readonly kernelSize?: number;
  /**
   * Stride along both spatial axes, in pixels.
   * @default 1
   */
  readonly strides?: number;
  /** @default 'same' */
  readonly padding?: Padding;
  /** @default 'linear' */
  readonly activation?: Activation;
}

/** Options of {@link HostBuilder.maxPool}. */
export interface MaxPoolOptions {
  /** @default `pool<n>` */
  readonly name?: string;
  /**
   * Stride along both spatial axes, in pixels.
   * @default the pool size
   */
  readonly strides?: number;
  /** @default 'valid' */
  readonly padding?: Padding;
}

/** Options of {@link HostBuilder.flatten}. */
export interface FlattenOptions {
  /** @default `flatten<n>` */
  readonly name?: string;
}

/** Names of hosts, blocks and sites: no `/`, which separates the parts of variable names. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const check = optionChecks('HostBuilder');

function assertName(value: string, field: string): void {
  if (typeof value !== 'string' || !NAME_RE.test(value)) check.fail(field, `a name matching ${String(NAME_RE)}`, value);
}

const DEFAULT_NAME_PREFIX: Readonly<Record<BlockKind, string>> = {
  [BlockKind.DENSE]: 'dense',
  [BlockKind.CONV2D]: 'conv',
  [BlockKind.MAX_POOL]: 'pool',
  [BlockKind.FLATTEN]: 'flatten',
};

/** Builds a {@link BlockHost}. Each builder builds one host. */
export class HostBuilder {
  private readonly hostId: string;
  private readonly family: string;
  private readonly inputShape: readonly number[];
  private readonly seed: number;
  private readonly specs: BlockSpec[] = [];
  private readonly sites: SeedSiteDescriptor[] = [];
  private built = false;

  constructor(options: HostBuilderOptions) {
    assertName(options.hostId, 'hostId');
    const family = options.family ?? 'custom';
    assertName(family, 'family');
    if (
      !Array.isArray(options.inputShape) ||
      options.inputShape.length === 0 ||
      !options.inputShape.every((d) => Number.isInteger(d) && d > 0)
    ) {
      check.fail('inputShape', 'a non-empty array of positive integers', options.inputShape);
    }
    check.integer('seed', options.seed, { min: 0 });
    this.hostId = options.hostId;
    this.family = family;
    this.inputShape = [...options.inputShape];
    this.seed = options.seed;
  }

  /** Per-example shape at the end of the blocks added so far. */
  get currentShape(): readonly number[] {
    return this.specs[this.specs.length - 1]?.outputShape ?? this.inputShape;
  }

  /** Adds a dense block `activation(x·W + b)` with `units` outputs. */
  dense(units: number, activation: Activation = Activation.LINEAR, options: DenseOptions = {}): this {
    return this.add(
      denseSpec(this.currentShape, {
        name: this.blockName(options.name, BlockKind.DENSE),
        units,
        activation,
        initializer: options.initializer ?? defaultInitializer(activation),
        useBias: options.useBias ?? true,
      }),
    );
  }

  /** Adds a 2-D convolution block with `filters` output channels (NHWC). */
  conv2d(filters: number, options: Conv2dOptions = {}): this {
    const activation = options.activation ?? Activation.LINEAR;
    return this.add(
      conv2dSpec(this.currentShape, {
        name: this.blockName(options.name, BlockKind.CONV2D),
        filters,
        kernelSize: options.kernelSize ?? 3,
        strides: options.strides ?? 1,
        padding: options.padding ?? 'same',
        activation,
        initializer: options.initializer ?? defaultInitializer(activation),
        useBias: options.useBias ?? true,
      }),
    );
  }

  /** Adds a max-pool block over `poolSize`×`poolSize` windows. */
  maxPool(poolSize = 2, options: MaxPoolOptions = {}): this {
    return this.add(
      maxPoolSpec(this.currentShape, {
        name: this.blockName(options.name, BlockKind.MAX_POOL),
        poolSize,
        strides: options.strides ?? poolSize,
        padding: options.padding ?? 'valid',
      }),
    );
  }

  /** Adds a block that flattens each example to a vector. */
  flatten(options: FlattenOptions = {}): this {
    return this.add(flattenSpec(this.currentShape, this.blockName(options.name, BlockKind.FLATTEN)));
  }

  /**
   * Declares a seed site after the last block added: DENSE for a vector activation, CONV
   * for an `[h, w, c]` feature map.
   */
  site(siteId: string): this {
    const { block, depth } = this.siteBlock(siteId, false);
    const shape = block.outputShape;
    let kind: SeedSiteKind;
    if (shape.length === 1) kind = SeedSiteKind.DENSE;
    else if (shape.length === 3) kind = SeedSiteKind.CONV;
    else {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `host '${this.hostId}': site '${siteId}' needs a [features] or [h, w, c] activation, got [${shape.join(', ')}]`,
        { details: { siteId } },
      );
    }
    this.sites.push(create(SeedSiteDescriptorSchema, { siteId, block: block.name, kind, shape: [...shape], depth }));
    return this;
  }

  /**
   * Declares a WIDEN site on the last block added: a seed there adds units to that layer.
   * A dense block must be followed by a dense block; a conv2d block (new output channels)
   * by at most one max-pool and then a conv2d block, or a flatten and a dense block (checked
   * at `build()`, see `widen-path.ts`). Its `shape` is the block's input shape, its
   * `output_shape` the next weighted block's output shape, and on a conv2d block its
   * `conv_widen` the path the new channels take. A block may have several (growth slots:
   * each holds one seed, and the host sums their contributions), unlike DENSE and CONV sites
   * (one per block: their hooks chain).
   */
  widenSite(siteId: string): this {
    const { block, depth } = this.siteBlock(siteId, true);
    if (block.kind !== BlockKind.DENSE && block.kind !== BlockKind.CONV2D) {
      throw new EsperError(
        ErrorCode.INVALID_ARGUMENT,
        `host '${this.hostId}': WIDEN site '${siteId}' needs a dense or conv2d block, '${block.name}' is ${block.kind}`,
        {
          details: { siteId, block: block.name },
        },
      );
    }
    this.sites.push(
      create(SeedSiteDescriptorSchema, { siteId, block: block.name, kind: SeedSiteKind.WIDEN, shape: [...block.inputShape], depth }),
    );
    return this;
  }

  /** The last block added, for a new site `siteId` (one DENSE or CONV site per block, any number of WIDEN sites). */
  private siteBlock(siteId: string, widen: boolean): { block: BlockSpec; depth: number } {
    this.assertOpen();
    assertName(siteId, 'siteId');
    const block = this.specs[this.specs.length - 1];
    if (block === undefined) {
      throw new EsperError(ErrorCode.INVALID_STATE, `host '${this.hostId}': site '${siteId}' must follow a block`, {
        details: { siteId },
      });
    }
    const depth = this.specs.length - 1;
    if (this.sites.some((s) => s.siteId === siteId)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host '${this.hostId}': duplicate site id '${siteId}'`, { details: { siteId } });
    }
    if (!widen && this.sites.some((s) => s.depth === depth && s.kind !== SeedSiteKind.WIDEN)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host '${this.hostId}': block '${block.name}' already has a seed site`, {
        details: { siteId, block: block.name },
      });
    }
    return { block, depth };
  }

  /** Sets each WIDEN site's `output_shape` (and, on a conv block, `conv_widen`) from the blocks after its own. */
  private resolveWidenSites(): void {
    for (const site of this.sites) {
      if (site.kind !== SeedSiteKind.WIDEN) continue;
      const resolved = widenPathOf(this.specs, site.depth);
      if (!resolved.ok) {
        throw new EsperError(ErrorCode.INVALID_STATE, `host '${this.hostId}': WIDEN site '${site.siteId}' ${resolved.reason}`, {
          details: { siteId: site.siteId, block: site.block },
        });
      }
      site.outputShape = [...resolved.path.outputShape];
      if (resolved.path.convWiden !== undefined) site.convWiden = resolved.path.convWiden;
    }
  }

  /**
   * Creates the variables and returns the host. The last block's output must be the
   * logits vector (rank 1); its length is the host's class count.
   */
  build(): BlockHost {
    this.assertOpen();
    const last = this.specs[this.specs.length - 1];
    if (last === undefined || last.outputShape.length !== 1) {
      throw new EsperError(ErrorCode.INVALID_STATE, `host '${this.hostId}': the last block must output a logits vector`, {
        details: { hostId: this.hostId },
      });
    }
    this.resolveWidenSites();
    const prefix = `${this.hostId}/`;
    if (Object.keys(tf.engine().registeredVariables).some((name) => name.startsWith(prefix))) {
      throw new EsperError(
        ErrorCode.INVALID_STATE,
        `host id '${this.hostId}' is in use by a live host (dispose it or choose another hostId)`,
        { details: { hostId: this.hostId } },
      );
    }
    this.built = true;
    const root = seededRng(this.seed);
    const blocks: HostBlock[] = [];
    try {
      this.specs.forEach((spec, index) => blocks.push(spec.materialise(this.hostId, root.fork(index))));
      return new BlockHost({ hostId: this.hostId, family: this.family, inputShape: this.inputShape, blocks, sites: this.sites });
    } catch (error) {
      for (const block of blocks) for (const variable of block.variables) variable.dispose();
      throw error;
    }
  }

  private add(spec: BlockSpec): this {
    this.assertOpen();
    if (this.specs.some((s) => s.name === spec.name)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `host '${this.hostId}': duplicate block name '${spec.name}'`, {
        details: { block: spec.name },
      });
    }
    this.specs.push(spec);
    return this;
  }

  private blockName(name: string | undefined, kind: BlockKind): string {
    this.assertOpen();
    const resolved = name ?? `${DEFAULT_NAME_PREFIX[kind]}${this.specs.filter((s) => s.kind === kind).length + 1}`;
    assertName(resolved, 'name');
    return resolved;
  }

  private assertOpen(): void {
    if (this.built) {
      throw new EsperError(ErrorCode.INVALID_STATE, `host '${this.hostId}': builder already built its host`, {
        details: { hostId: this.hostId },
      });
    }
  }
}
