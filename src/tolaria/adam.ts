/**
 * Adam with a step count per variable, for hosts that grow. tfjs's Adam keeps one pair of
 * running products `β₁ᵗ, β₂ᵗ` for the whole optimizer, so a variable added at step 5,000
 * gets the bias correction of step 5,000 on its first update: `m/√v` with fresh moments is
 * `(1−β₁)/√(1−β₂) ≈ 3.16` times the bias-corrected step, and new units die or jump. Here
 * every variable carries its own products (slots `<name>/acc_beta1`, `<name>/acc_beta2`,
 * starting at `β₁`, `β₂` like tfjs's), advanced only on steps where it has a gradient, as
 * torch's Adam keeps `state['step']` per parameter. For a variable trained from step 1 the
 * arithmetic is tfjs's, op for op, so a host that never grows trains bit-identically. Each
 * variable's step is one fused kernel (`adamUpdate` in `src/tensor`), not tfjs's thirteen.
 */
import { ErrorCode, EsperError } from '../core/index.js';
import { adamUpdate, tf, type NamedTensor } from '../tensor/index.js';

/** Slot suffixes, in the order {@link PerVariableAdam.getWeights} lists the groups. */
export const ADAM_SLOT_SUFFIXES = ['m', 'v', 'acc_beta1', 'acc_beta2'] as const;

/** Slot groups of checkpoints written before per-variable counts (`m`, `v` only). */
const LEGACY_GROUPS = 2;

interface Slots {
  /** The variable these slots belong to (slot names are `<name>/<suffix>`). */
  readonly name: string;
  readonly m: tf.Variable;
  readonly v: tf.Variable;
  readonly accBeta1: tf.Variable;
  readonly accBeta2: tf.Variable;
}

/** Adam whose bias correction follows each variable's own step count. */
export class PerVariableAdam extends tf.Optimizer {
  static get className(): string {
    return 'EsperPerVariableAdam';
  }

  /** Read on every step; the optimizer manager sets it directly. */
  learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Slots by position in the gradient list (tfjs's convention: callers keep the order). */
  #slots: (Slots | undefined)[] = [];

  constructor(learningRate: number, beta1: number, beta2: number, epsilon?: number) {
    super();
    this.learningRate = learningRate;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.epsilon = epsilon ?? tf.backend().epsilon();
  }

  applyGradients(variableGradients: tf.NamedTensorMap | NamedTensor[]): void {
    const entries = Array.isArray(variableGradients)
      ? variableGradients.map((g) => [g.name, g.tensor] as const)
      : Object.entries(variableGradients).map(([name, tensor]) => [name, tensor] as const);
    tf.tidy(() => {
      entries.forEach(([name, gradient], i) => {
        const value = tf.engine().registeredVariables[name];
        if (value === undefined)
          throw new EsperError(ErrorCode.INVALID_ARGUMENT, `PerVariableAdam: gradient for '${name}', which is no registered variable`);
        const slots = this.#slots[i] ?? this.#createSlots(i, name, value);
        // tfjs optimizers skip a null gradient but keep the slot's position.
        if ((gradient as tf.Tensor | null) == null) return;
        const next = adamUpdate(
          { value, m: slots.m, v: slots.v, gradient, accBeta1: slots.accBeta1, accBeta2: slots.accBeta2 },
          { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon },
        );
        slots.m.assign(next.m);
        slots.v.assign(next.v);
        value.assign(next.value);
        slots.accBeta1.assign(next.accBeta1);
        slots.accBeta2.assign(next.accBeta2);
      });
    });
    this.incrementIterations();
  }

  /** The iteration count, then every variable's `m`, then `v`, `acc_beta1`, `acc_beta2`. */
  override async getWeights(): Promise<NamedTensor[]> {
    const present = this.#slots.filter((s): s is Slots => s !== undefined);
    const groups = ADAM_SLOT_SUFFIXES.map((suffix) => present.map((s) => ({ name: `${s.name}/${suffix}`, tensor: slotOf(s, suffix) })));
    return [await this.saveIterations(), ...groups.flat()];
  }

  /**
   * Restores `getWeights()` output. State from before per-variable counts (`m` and `v`
   * only) restores with every variable at the global count: products `β^(iterations+1)`.
   */
  override async setWeights(weightValues: NamedTensor[]): Promise<void> {
    const rest = await this.extractIterations(weightValues);
    const groups = rest.some((w) => w.name.endsWith('/acc_beta1')) || rest.length === 0 ? ADAM_SLOT_SUFFIXES.length : LEGACY_GROUPS;
    if (rest.length % groups !== 0)
      throw new EsperError(ErrorCode.INVALID_STATE, `PerVariableAdam: ${rest.length} slots are not ${groups} equal groups`);
    const n = rest.length / groups;
    const at = (g: number, i: number): NamedTensor => rest[g * n + i] as NamedTensor;
    this.#disposeSlots();
    const steps = this.iterations + 1;
    // A legacy product is made here (tidy frees the scalar, keeps the variable); the others
    // wrap the caller's tensors, which the caller still owns.
    const product = (g: number, i: number, beta: number): tf.Variable =>
      groups === LEGACY_GROUPS ? tf.tidy(() => tf.scalar(beta ** steps).variable(false)) : at(g, i).tensor.variable(false);
    this.#slots = Array.from({ length: n }, (_, i) => ({
      name: at(0, i).name.slice(0, at(0, i).name.lastIndexOf('/')),
      m: at(0, i).tensor.variable(false),
      v: at(1, i).tensor.variable(false),
      accBeta1: product(2, i, this.beta1),
      accBeta2: product(3, i, this.beta2),
    }));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { learningRate: this.learningRate, beta1: this.beta1, beta2: this.beta2, epsilon: this.epsilon };
  }

  static override fromConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>,
    config: tf.serialization.ConfigDict,
  ): T {
    return new cls(config['learningRate'], config['beta1'], config['beta2'], config['epsilon']);
  }

  override dispose(): void {
    this.#disposeSlots();
    super.dispose();
  }

  #createSlots(i: number, name: string, value: tf.Variable): Slots {
    const slots = tf.tidy(() => ({
      name,
      m: tf.zerosLike(value).variable(false),
      v: tf.zerosLike(value).variable(false),
      accBeta1: tf.scalar(this.beta1).variable(false),
      accBeta2: tf.scalar(this.beta2).variable(false),
    }));
    // tidy() keeps variables; they are ours until dispose().
    this.#slots[i] = slots;
    return slots;
  }

  #disposeSlots(): void {
    for (const s of this.#slots) if (s !== undefined) tf.dispose([s.m, s.v, s.accBeta1, s.accBeta2]);
    this.#slots = [];
  }
}

function slotOf(slots: Slots, suffix: (typeof ADAM_SLOT_SUFFIXES)[number]): tf.Variable {
  switch (suffix) {
    case 'm':
      return slots.m;
    case 'v':
      return slots.v;
    case 'acc_beta1':
      return slots.accBeta1;
    case 'acc_beta2':
      return slots.accBeta2;
  }
}

tf.serialization.registerClass(PerVariableAdam);
