/**
 * The registry of host families, so callers (the CLI, experiment configs) choose a host
 * by name: `createHost('mlp', { inputShape: dataset.inputShape, numClasses: 10, seed })`.
 */
import { ErrorCode, EsperError } from '../../core/index.js';
import type { BlockHost } from './block-host.js';
import { cnnHost, type CnnHostOptions } from './cnn-host.js';
import { mlpHost, type MlpHostCommonOptions } from './mlp-host.js';

/** Options every family accepts (family-specific knobs are optional). */
export interface HostFamilyOptions {
  /** Per-example input shape of the dataset. */
  readonly inputShape: readonly number[];
  /** Number of classes. */
  readonly numClasses: number;
  /** Seed of the weight initialisation. */
  readonly seed: number;
  /**
   * Variable-name prefix; unique among live hosts.
   * @default the family name
   */
  readonly hostId?: string;
}

/** Options of each family, by name. */
export interface HostFamilyOptionsMap {
  readonly mlp: HostFamilyOptions & Pick<MlpHostCommonOptions, 'hidden' | 'bias' | 'widenSlots'>;
  readonly cnn: HostFamilyOptions & Pick<CnnHostOptions, 'channels' | 'kernelSize'>;
}

/** One registered host family. */
export interface HostFamilyDefinition<O> {
  /** The family name (as recorded in `HostDescriptor.family`). */
  readonly name: string;
  /** One line for `--help` output. */
  readonly description: string;
  /** Builds a host of this family. */
  create(options: O): BlockHost;
}

/** Every host family, by name. */
export const HOST_FAMILIES: { readonly [F in keyof HostFamilyOptionsMap]: HostFamilyDefinition<HostFamilyOptionsMap[F]> } = {
  mlp: {
    name: 'mlp',
    description: 'dense ReLU layers (default 256-256), a seed site after each, linear head',
    create: (options) => mlpHost(options),
  },
  cnn: {
    name: 'cnn',
    description: '3x3 conv + ReLU + 2x2 max-pool blocks (default 32, 64 channels), a seed site after each, linear head',
    create: (options) => cnnHost(options),
  },
};

/** Name of a registered host family. */
export type HostFamilyName = keyof HostFamilyOptionsMap;

/** Whether `name` is a registered host family. */
export function isHostFamilyName(name: string): name is HostFamilyName {
  return Object.hasOwn(HOST_FAMILIES, name);
}

/** Builds a host of the named family; throws INVALID_ARGUMENT for an unknown family. */
export function createHost<F extends HostFamilyName>(family: F, options: HostFamilyOptionsMap[F]): BlockHost;
export function createHost(family: string, options: HostFamilyOptions): BlockHost;
export function createHost(family: string, options: HostFamilyOptions): BlockHost {
  if (!isHostFamilyName(family)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown host family '${family}' (known: ${Object.keys(HOST_FAMILIES).join(', ')})`, {
      details: { field: 'family', family },
    });
  }
  const definition = HOST_FAMILIES[family] as HostFamilyDefinition<HostFamilyOptions>;
  return definition.create(options);
}
