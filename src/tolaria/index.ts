/**
 * Tolaria: host models, datasets and the trainer. Other subsystems import only from this
 * file.
 */
export type { HostModel, SeedSiteHook } from './host-model.js';
export type { Batch, Dataset, DatasetSplit, DataCursorState } from './dataset.js';
