/**
 * The data of GradMax's student–teacher protocol (Evci et al., ICLR 2022,
 * `Student_Teacher.ipynb`): a fixed random teacher MLP `inputs → hidden → outputs` (ReLU;
 * weights uniform(−r, r) as the notebook sets them with `weights_range` r, or Glorot uniform,
 * Keras' default dense layer, when no range is given; with or without zero biases) labels
 * standard-normal inputs; the task is to regress its outputs under MSE. Drawn from the data
 * seed alone, so every run of a study (whatever its run seed) sees the same teacher and the
 * same examples. The validation split is as many fresh inputs through the same teacher.
 */
import { Initializer, initializerValues, seededRng, type Rng } from '../tensor/index.js';
import { ValueSplit, type Dataset } from '../tolaria/index.js';
import type { TaskDataset } from './tasks.js';

/** What {@link teacherDataset} draws: a task's `teacher` dataset (the validation split has `examples` more). */
export type TeacherDataOptions = Omit<Extract<TaskDataset, { readonly kind: 'teacher' }>, 'kind'>;

/** The teacher's weights: `w1` `[inputSize, teacherHidden]`, `w2` `[teacherHidden, outputSize]`, row-major. */
export interface TeacherWeights {
  readonly w1: Float32Array;
  readonly w2: Float32Array;
}

/** The teacher drawn from `rng` (uniform(−r, r) with `teacherWeightRange` r, else Glorot uniform; biases, when present, are zero). */
export function drawTeacher(options: Omit<TeacherDataOptions, 'examples' | 'dataSeed'>, rng: Rng): TeacherWeights {
  const range = options.teacherWeightRange;
  const draw = (shape: [number, number]): Float32Array =>
    range === undefined
      ? initializerValues(Initializer.GLOROT_UNIFORM, shape, rng)
      : Float32Array.from({ length: shape[0] * shape[1] }, () => (2 * rng.nextFloat() - 1) * range);
  return { w1: draw([options.inputSize, options.teacherHidden]), w2: draw([options.teacherHidden, options.outputSize]) };
}

/** `relu(x·w1)·w2` for `count` examples of `x` (row-major), in float64 accumulation. */
export function teacherOutputs(
  teacher: TeacherWeights,
  x: Float32Array,
  sizes: Omit<TeacherDataOptions, 'examples' | 'teacherBias' | 'dataSeed'>,
): Float32Array {
  const { inputSize, teacherHidden, outputSize } = sizes;
  const count = x.length / inputSize;
  const out = new Float32Array(count * outputSize);
  const hidden = new Float64Array(teacherHidden);
  for (let n = 0; n < count; n += 1) {
    hidden.fill(0);
    for (let i = 0; i < inputSize; i += 1) {
      const xi = x[n * inputSize + i] as number;
      for (let h = 0; h < teacherHidden; h += 1) hidden[h] = (hidden[h] as number) + xi * (teacher.w1[i * teacherHidden + h] as number);
    }
    for (let h = 0; h < teacherHidden; h += 1) {
      const a = Math.max(0, hidden[h] as number);
      if (a === 0) continue;
      for (let o = 0; o < outputSize; o += 1)
        out[n * outputSize + o] = (out[n * outputSize + o] as number) + a * (teacher.w2[h * outputSize + o] as number);
    }
  }
  return out;
}

/** The student–teacher regression dataset (`targets: 'values'`, `numClasses` = outputs). */
export function teacherDataset(options: TeacherDataOptions): Dataset {
  const rng = seededRng(options.dataSeed);
  const teacher = drawTeacher(options, rng.fork(1));
  const inputs = rng.fork(2);
  const split = (count: number): ValueSplit => {
    const x = Float32Array.from({ length: count * options.inputSize }, () => inputs.nextNormal());
    return new ValueSplit({
      inputShape: [options.inputSize],
      outputs: options.outputSize,
      inputs: x,
      targets: teacherOutputs(teacher, x, options),
    });
  };
  const train = split(options.examples);
  const validation = split(options.examples);
  return {
    name: `teacher-${options.inputSize}-${options.teacherHidden}-${options.outputSize}`,
    inputShape: [options.inputSize],
    numClasses: options.outputSize,
    targets: 'values',
    train,
    validation,
  };
}
