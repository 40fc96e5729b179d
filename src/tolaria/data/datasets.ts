/**
 * Datasets by name, so callers (the CLI, experiment configs) choose one with a string:
 * `await loadDataset('mnist', { layout: 'image' })`.
 */
import { ErrorCode, EsperError, type TelemetrySink } from '../../core/index.js';
import type { Dataset } from '../dataset.js';
import { loadCifar10 } from './cifar10.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { loadMnist, type MnistLayout } from './mnist.js';
import { moonsDataset, spiralsDataset, xorDataset, type SyntheticOptions } from './synthetic.js';

/** Names {@link loadDataset} accepts. */
export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'cifar10', 'xor', 'spirals', 'moons'] as const;

/** Union of {@link DATASET_NAMES}. */
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Options of {@link loadDataset}; each dataset reads the fields that concern it. */
export interface LoadDatasetOptions extends Partial<SyntheticOptions> {
  /**
   * MNIST and Fashion-MNIST input layout.
   * @default 'flat'
   */
  readonly layout?: MnistLayout;
  /** CIFAR-10: directory of the binary batch files (required for `cifar10`). */
  readonly directory?: string;
  /**
   * Fashion-MNIST: directory of its decoded byte cache (`<storage.varDir>/datasets`).
   * @default './var/datasets'
   */
  readonly cacheDirectory?: string;
  /** Fashion-MNIST: receives the WARNING packets of a rebuilt or unwritable cache. */
  readonly telemetry?: TelemetrySink;
}

/** Whether `name` is a known dataset. */
export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/**
 * Loads the named dataset. Synthetic tasks use `seed` (default 0), `trainSize`,
 * `validationSize` and `noise`; MNIST uses `layout`; Fashion-MNIST `layout`, `cacheDirectory`
 * and `telemetry`; CIFAR-10 needs `directory`.
 */
export async function loadDataset(name: string, options: LoadDatasetOptions = {}): Promise<Dataset> {
  if (!isDatasetName(name)) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown dataset '${name}' (known: ${DATASET_NAMES.join(', ')})`, {
      details: { field: 'dataset', dataset: name },
    });
  }
  const synthetic: SyntheticOptions = { ...options, seed: options.seed ?? 0 };
  switch (name) {
    case 'mnist':
      return loadMnist(options.layout === undefined ? {} : { layout: options.layout });
    case 'fashion-mnist':
      return loadFashionMnist({ layout: options.layout, cacheDirectory: options.cacheDirectory, telemetry: options.telemetry });
    case 'cifar10':
      if (options.directory === undefined) {
        throw new EsperError(ErrorCode.INVALID_ARGUMENT, "dataset 'cifar10' needs a directory", { details: { field: 'directory' } });
      }
      return loadCifar10({ directory: options.directory });
    case 'xor':
      return xorDataset(synthetic);
    case 'spirals':
      return spiralsDataset(synthetic);
    case 'moons':
      return moonsDataset(synthetic);
    default: {
      const never: never = name;
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `unknown dataset '${String(never)}'`, { details: { field: 'dataset' } });
    }
  }
}
