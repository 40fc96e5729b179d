/**
 * The optimizer manager (reference prototype-tolaria-oona-nissa-weatherlight §2.11): owns
 * the tfjs optimizer, the variables it trains, and its rebuild when seed hooks attach or
 * detach. tfjs keeps slots by position, so a rebuild moves every surviving variable's slots
 * to a fresh optimizer (matched by identity; fresh slots for new ones; iteration count
 * kept) behind a rebuild-storm guard (`docs/architecture.md` § Tolaria). Adam is
 * {@link PerVariableAdam}: a variable added by growth is bias-corrected by its own step
 * count, not the run's.
 * Departures (prototype-rc1-plan §3.1.0): only growth can be deferred — a removed variable
 * cannot stay in a tfjs optimizer, so a removal always rebuilds or throws
 * `TOLARIA_OPTIMIZER_REBUILD_FAILED`; per-variable state is carried across a rebuild (the
 * prototype ignored a failed `load_state_dict`); no mutable optimizer reference is exposed.
 */
import {
  CircuitBreaker,
  errorLabel,
  errorMessage,
  ErrorCode,
  EsperError,
  optionChecks,
  systemClock,
  type CircuitBreakerSnapshot,
  type Clock,
} from '../core/index.js';
import { OptimizerFamily } from '../leyline/index.js';
import { restoreOptimizerState, saveOptimizerState, tf } from '../tensor/index.js';
import { ADAM_SLOT_SUFFIXES, PerVariableAdam } from './adam.js';

/** Optimizers the manager builds. */
export const OptimizerKind = {
  SGD: 'sgd',
  MOMENTUM: 'momentum',
  ADAM: 'adam',
} as const;

/** Union of {@link OptimizerKind} values. */
export type OptimizerKind = (typeof OptimizerKind)[keyof typeof OptimizerKind];

/** Hyper-parameters of the optimizer. */
export interface OptimizerConfig {
  /** @default 'adam' */
  readonly kind?: OptimizerKind;
  /** Base learning rate (> 0). @default 0.001 */
  readonly learningRate?: number;
  /** Momentum coefficient (momentum only), in [0, 1). @default 0.9 */
  readonly momentum?: number;
  /** Nesterov momentum (momentum only). @default false */
  readonly nesterov?: boolean;
  /** Adam β₁, in [0, 1). @default 0.9 */
  readonly beta1?: number;
  /** Adam β₂, in [0, 1). @default 0.999 */
  readonly beta2?: number;
  /** Adam ε (> 0). @default 1e-7 (the tfjs float32 backend epsilon) */
  readonly epsilon?: number;
}

/** {@link OptimizerConfig} with every default applied. */
export type ResolvedOptimizerConfig = Required<OptimizerConfig>;

/** Defaults of {@link OptimizerConfig}. */
export const OPTIMIZER_DEFAULTS: ResolvedOptimizerConfig = Object.freeze({
  kind: OptimizerKind.ADAM,
  learningRate: 0.001,
  momentum: 0.9,
  nesterov: false,
  beta1: 0.9,
  beta2: 0.999,
  epsilon: 1e-7,
});

/** Options of {@link OptimizerManager}. */
export interface OptimizerManagerOptions {
  readonly config?: OptimizerConfig;
  /**
   * Storm guard: fewest optimizer steps between two rebuilds (0 = no interval guard). A
   * growth inside the interval is deferred and counted in `skipped`.
   * @default 0
   */
  readonly minRebuildIntervalSteps?: number;
  /**
   * Consecutive rebuild failures that open the rebuild breaker.
   * @default 3
   */
  readonly breakerFailureThreshold?: number;
  /**
   * How long an open rebuild breaker refuses rebuilds, in milliseconds.
   * @default 10000
   */
  readonly rebuildBackoffMs?: number;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** Defaults of {@link OptimizerManagerOptions} (reference §1.4 `TOLARIA_OPT_REBUILD_*`). */
export const OPTIMIZER_MANAGER_DEFAULTS = Object.freeze({
  minRebuildIntervalSteps: 0,
  breakerFailureThreshold: 3,
  rebuildBackoffMs: 10_000,
});

/** What {@link OptimizerManager.sync} did. */
export type OptimizerSyncResult =
  /** The variable list had not changed. */
  | { readonly outcome: 'unchanged' }
  /** A fresh optimizer now trains the new list. */
  | {
      readonly outcome: 'rebuilt';
      readonly latencyMs: number;
      readonly added: number;
      readonly removed: number;
      /** True when a removal forced the rebuild inside the storm-guard interval. */
      readonly forced: boolean;
    }
  /** Growth deferred by the storm guard or the open breaker; new variables wait. */
  | { readonly outcome: 'skipped'; readonly reason: 'min_interval' | 'breaker_open'; readonly pending: number }
  /** A growth rebuild failed; the previous optimizer keeps training the previous list. */
  | { readonly outcome: 'failed'; readonly latencyMs: number; readonly error: string };

/** Counters of an {@link OptimizerManager}. */
export interface OptimizerManagerStats {
  readonly rebuildsTotal: number;
  readonly rebuildFailuresTotal: number;
  readonly rebuildSkippedTotal: number;
  /** Duration of the last rebuild attempt (0 before any). */
  readonly lastRebuildLatencyMs: number;
  /** Variables waiting for a deferred rebuild. */
  readonly pendingVariables: number;
  readonly breaker: CircuitBreakerSnapshot;
}

/**
 * An in-memory copy of the optimizer state (slot clones, iteration count), keyed by
 * variable identity. Cloning is O(1) per tensor in tfjs (buffers are
 * shared and copy-on-assign), which is what makes per-step fast-rollback snapshots cheap.
 * Owned by the caller: call {@link dispose}.
 */
export interface OptimizerStateSnapshot {
  readonly kind: OptimizerKind;
  readonly iterations: number;
  readonly learningRate: number;
  /** Bytes held by the cloned tensors. */
  readonly bytes: number;
  dispose(): void;
}

interface SnapshotData extends OptimizerStateSnapshot {
  readonly variables: readonly tf.Variable[];
  /** `slots[group][i]` belongs to `variables[i]`. */
  readonly slots: readonly (readonly tf.Tensor[])[];
}

/** Slot name suffixes per optimizer kind, in the order the optimizer's `getWeights` lists groups. */
const SLOT_SUFFIXES: Readonly<Record<OptimizerKind, readonly string[]>> = {
  sgd: [],
  momentum: ['momentum'],
  adam: ADAM_SLOT_SUFFIXES,
};

type LiveState = Pick<SnapshotData, 'variables' | 'slots' | 'iterations'>;

/** The config is the trainer's `optimizer` option: errors name it so. */
const check = optionChecks('TrainerOptions');

/** Merges `config` over {@link OPTIMIZER_DEFAULTS}, validating every field. */
export function resolveOptimizerConfig(config: OptimizerConfig = {}): ResolvedOptimizerConfig {
  const merged = { ...OPTIMIZER_DEFAULTS };
  for (const [key, value] of Object.entries(config)) {
    if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  }
  check.oneOf('optimizer.kind', merged.kind, Object.values(OptimizerKind));
  check.positive('optimizer.learningRate', merged.learningRate);
  for (const field of ['momentum', 'beta1', 'beta2'] as const) {
    if (!(merged[field] >= 0 && merged[field] < 1)) check.fail(`optimizer.${field}`, 'a finite number ≥ 0 and < 1', merged[field]);
  }
  check.positive('optimizer.epsilon', merged.epsilon);
  return Object.freeze(merged);
}

function tensorBytes(tensors: readonly tf.Tensor[]): number {
  return tensors.reduce((sum, t) => sum + t.size * 4, 0);
}

/** Owns the optimizer and the variable list it trains. */
export class OptimizerManager {
  /** The resolved hyper-parameters (the learning rate here is the base rate). */
  readonly config: ResolvedOptimizerConfig;
  readonly #clock: Clock;
  readonly #minRebuildIntervalSteps: number;
  readonly #breaker: CircuitBreaker;
  #optimizer: tf.Optimizer;
  #variables: tf.Variable[];
  #learningRate: number;
  #lastRebuildStep = -Infinity;
  #rebuildsTotal = 0;
  #rebuildFailuresTotal = 0;
  #rebuildSkippedTotal = 0;
  #lastRebuildLatencyMs = 0;
  #pendingVariables = 0;
  #disposed = false;

  /**
   * @param variables the variables to train, in a stable order (names must be stable and
   *   unique: checkpoints pair optimizer slots with variables by name)
   */
  constructor(variables: readonly tf.Variable[], options: OptimizerManagerOptions = {}) {
    this.config = resolveOptimizerConfig(options.config);
    this.#clock = options.clock ?? systemClock;
    this.#minRebuildIntervalSteps = optionChecks('OptimizerManagerOptions').integer(
      'minRebuildIntervalSteps',
      options.minRebuildIntervalSteps ?? OPTIMIZER_MANAGER_DEFAULTS.minRebuildIntervalSteps,
      { min: 0 },
    );
    this.#breaker = new CircuitBreaker({
      name: 'tolaria.optimizer_rebuild',
      failureThreshold: options.breakerFailureThreshold ?? OPTIMIZER_MANAGER_DEFAULTS.breakerFailureThreshold,
      successThreshold: 1,
      openTimeoutMs: options.rebuildBackoffMs ?? OPTIMIZER_MANAGER_DEFAULTS.rebuildBackoffMs,
      clock: this.#clock,
    });
    this.#learningRate = this.config.learningRate;
    this.#variables = [...variables];
    this.#optimizer = this.#create();
  }

  /** The optimizer kind. */
  get kind(): OptimizerKind {
    return this.config.kind;
  }

  /** The contract enum of the optimizer kind (`TrainingMetrics.optimizer_family`). */
  get family(): OptimizerFamily {
    switch (this.config.kind) {
      case OptimizerKind.SGD:
        return OptimizerFamily.SGD;
      case OptimizerKind.MOMENTUM:
        return OptimizerFamily.MOMENTUM;
      case OptimizerKind.ADAM:
        return OptimizerFamily.ADAM;
    }
  }

  /** Momentum coefficient for the momentum optimizer; undefined for the others. */
  get momentum(): number | undefined {
    return this.config.kind === OptimizerKind.MOMENTUM ? this.config.momentum : undefined;
  }

  /** The learning rate the next step uses. */
  get learningRate(): number {
    return this.#learningRate;
  }

  /** Optimizer steps taken (restored with the state). */
  get iterations(): number {
    return this.#optimizer.iterations;
  }

  /** The variables the optimizer trains now, in its order. */
  get variables(): readonly tf.Variable[] {
    return this.#variables;
  }

  /** Sets the learning rate of the next steps (> 0). */
  setLearningRate(learningRate: number): void {
    optionChecks('OptimizerManager.setLearningRate').positive('learningRate', learningRate);
    this.#learningRate = learningRate;
    this.#applyLearningRate(this.#optimizer);
  }

  /**
   * Applies one step of gradients, keyed by variable name. A trained variable without a
   * gradient (not connected to the loss this step) is skipped, as torch skips parameters
   * whose `grad` is None; extra entries (variables waiting for a deferred rebuild) are
   * ignored. Call inside `tf.tidy`.
   */
  applyGradients(gradients: tf.NamedTensorMap): void {
    this.#assertLive();
    // tfjs optimizers skip a null gradient but still keep the variable's slot position.
    const ordered = this.#variables.map((v) => ({ name: v.name, tensor: (gradients[v.name] ?? null) as tf.Tensor }));
    this.#optimizer.applyGradients(ordered);
  }

  /**
   * Brings the optimizer in line with `variables` (the host's current trainable list):
   * unchanged, rebuilt, or — for growth only — deferred by the storm guard.
   * @param step global optimizer steps taken so far
   * @throws EsperError TOLARIA_OPTIMIZER_REBUILD_FAILED when a variable was removed and
   *   the rebuild is refused or fails
   */
  async sync(variables: readonly tf.Variable[], step: number): Promise<OptimizerSyncResult> {
    this.#assertLive();
    const next = new Set(variables);
    const current = new Set(this.#variables);
    const removed = this.#variables.filter((v) => !next.has(v)).length;
    const added = variables.filter((v) => !current.has(v)).length;
    if (removed === 0 && added === 0 && variables.length === this.#variables.length) {
      this.#pendingVariables = 0;
      return { outcome: 'unchanged' };
    }
    const forced = removed > 0;
    if (!forced && step - this.#lastRebuildStep < this.#minRebuildIntervalSteps) {
      this.#rebuildSkippedTotal += 1;
      this.#pendingVariables = added;
      return { outcome: 'skipped', reason: 'min_interval', pending: added };
    }
    if (!this.#breaker.allow()) {
      if (forced) throw this.#rebuildError('the rebuild breaker is open', undefined, removed);
      this.#rebuildSkippedTotal += 1;
      this.#pendingVariables = added;
      return { outcome: 'skipped', reason: 'breaker_open', pending: added };
    }
    const started = this.#clock.monotonicMs();
    try {
      await this.#install(variables, this.#liveState());
    } catch (error) {
      this.#lastRebuildLatencyMs = this.#clock.monotonicMs() - started;
      this.#rebuildFailuresTotal += 1;
      this.#breaker.recordFailure(errorLabel(error));
      if (forced) throw this.#rebuildError('the rebuild failed', error, removed);
      this.#pendingVariables = added;
      return { outcome: 'failed', latencyMs: this.#lastRebuildLatencyMs, error: errorMessage(error) };
    }
    this.#breaker.recordSuccess();
    this.#lastRebuildLatencyMs = this.#clock.monotonicMs() - started;
    this.#lastRebuildStep = step;
    this.#rebuildsTotal += 1;
    this.#pendingVariables = 0;
    return { outcome: 'rebuilt', latencyMs: this.#lastRebuildLatencyMs, added, removed, forced };
  }

  /**
   * Clones the optimizer state (cheap: tfjs clones share buffers). The caller owns the
   * snapshot; restore it with {@link restoreSnapshot}.
   */
  async snapshot(): Promise<OptimizerStateSnapshot> {
    this.#assertLive();
    const live = await this.#liveState();
    const slots = live.slots.map((group) => group.map((t) => tf.keep(tf.clone(t))));
    let disposed = false;
    const data: SnapshotData = {
      kind: this.config.kind,
      iterations: live.iterations,
      learningRate: this.#learningRate,
      bytes: tensorBytes(slots.flat()),
      variables: live.variables,
      slots,
      dispose: () => {
        if (disposed) return;
        disposed = true;
        tf.dispose(slots.flat());
      },
    };
    return data;
  }

  /**
   * Replaces the optimizer state by `snapshot` (taken by this manager): a fresh optimizer
   * for the current variable list, with the snapshot's slots for the variables it knew and
   * fresh slots for the others, its iteration count and learning rate. The
   * snapshot stays valid and can be restored again (the optimizer shares its buffers
   * copy-on-assign).
   */
  async restoreSnapshot(snapshot: OptimizerStateSnapshot): Promise<void> {
    this.#assertLive();
    const data = snapshot as SnapshotData;
    if (data.kind !== this.config.kind || !Array.isArray(data.slots)) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `snapshot of a ${data.kind} optimizer cannot restore a ${this.config.kind} one`);
    }
    this.#learningRate = data.learningRate;
    await this.#install(this.#variables, data);
  }

  /** Encodes the optimizer state for a checkpoint (slots named after their variables). */
  async save(): Promise<Uint8Array> {
    this.#assertLive();
    return saveOptimizerState(this.#optimizer);
  }

  /**
   * Restores state saved by {@link save} for `variables` (which become the trained list),
   * into a fresh optimizer, with `learningRate`.
   * @throws EsperError TENSOR_OPTIMIZER_STATE_MISMATCH when the saved slots do not follow
   *   the variables' names
   */
  async load(bytes: Uint8Array, variables: readonly tf.Variable[], learningRate: number): Promise<void> {
    this.#assertLive();
    const fresh = this.#create();
    try {
      await restoreOptimizerState(fresh, bytes, { variableNames: variables.map((v) => v.name) });
    } catch (error) {
      fresh.dispose();
      throw error;
    }
    this.#optimizer.dispose();
    this.#optimizer = fresh;
    this.#variables = [...variables];
    this.#pendingVariables = 0;
    this.setLearningRate(learningRate);
  }

  /** Counters and the rebuild breaker. */
  stats(): OptimizerManagerStats {
    return {
      rebuildsTotal: this.#rebuildsTotal,
      rebuildFailuresTotal: this.#rebuildFailuresTotal,
      rebuildSkippedTotal: this.#rebuildSkippedTotal,
      lastRebuildLatencyMs: this.#lastRebuildLatencyMs,
      pendingVariables: this.#pendingVariables,
      breaker: this.#breaker.snapshot(),
    };
  }

  /** Frees the optimizer's slot variables. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#optimizer.dispose();
  }

  #create(): tf.Optimizer {
    const c = this.config;
    const lr = this.#learningRate;
    switch (c.kind) {
      case OptimizerKind.SGD:
        return tf.train.sgd(lr);
      case OptimizerKind.MOMENTUM:
        return tf.train.momentum(lr, c.momentum, c.nesterov);
      case OptimizerKind.ADAM:
        return new PerVariableAdam(lr, c.beta1, c.beta2, c.epsilon);
    }
  }

  #applyLearningRate(optimizer: tf.Optimizer): void {
    // Not `instanceof`: tfjs gives Optimizer (and so every subclass) a duck-typed
    // Symbol.hasInstance, under which an Adam optimizer is an SGDOptimizer too.
    if (this.config.kind === OptimizerKind.SGD || this.config.kind === OptimizerKind.MOMENTUM) {
      (optimizer as tf.SGDOptimizer).setLearningRate(this.#learningRate);
    } else {
      // AdamOptimizer reads its protected `learningRate` field on every step and has no setter.
      (optimizer as unknown as { learningRate: number }).learningRate = this.#learningRate;
    }
  }

  /** The current optimizer's state, by reference (no copies). */
  async #liveState(): Promise<LiveState> {
    const weights = await this.#optimizer.getWeights();
    const [iter, ...slotWeights] = weights;
    const iterations = iter === undefined ? 0 : this.#optimizer.iterations;
    iter?.tensor.dispose();
    const groups = SLOT_SUFFIXES[this.config.kind].length;
    const n = this.#variables.length;
    // Slots exist only once the optimizer has stepped (tfjs creates them lazily).
    const slots: tf.Tensor[][] =
      slotWeights.length === 0 || n === 0
        ? []
        : Array.from({ length: groups }, (_, g) => slotWeights.slice(g * n, (g + 1) * n).map((w) => w.tensor));
    if (slots.length > 0 && slotWeights.length !== groups * n) {
      throw new EsperError(ErrorCode.INVALID_STATE, `optimizer holds ${slotWeights.length} slots for ${n} variables`);
    }
    return { variables: this.#variables, slots, iterations };
  }

  /**
   * Makes a fresh optimizer for `variables` carrying `state` (slots matched by variable
   * identity, zeros for variables `state` does not know), then swaps it in and frees the
   * previous one.
   */
  async #install(variables: readonly tf.Variable[], state: LiveState | Promise<LiveState>): Promise<void> {
    const source = await state;
    const suffixes = SLOT_SUFFIXES[this.config.kind];
    const index = new Map(source.variables.map((v, i) => [v, i]));
    const fresh = this.#create();
    const owned: tf.Tensor[] = [];
    try {
      const weights: { name: string; tensor: tf.Tensor }[] = [];
      const iter = tf.scalar(source.iterations, 'int32');
      owned.push(iter);
      weights.push({ name: 'iter', tensor: iter });
      if (source.slots.length > 0 || source.iterations > 0) {
        suffixes.forEach((suffix, g) => {
          for (const variable of variables) {
            const at = index.get(variable);
            const known = at === undefined ? undefined : source.slots[g]?.[at];
            if (known !== undefined && !tf.util.arraysEqual(known.shape, this.#isStepProduct(suffix) ? [] : variable.shape)) {
              throw new EsperError(ErrorCode.INVALID_STATE, `slot of '${variable.name}' has shape [${known.shape.join(',')}]`);
            }
            const tensor = known ?? this.#freshSlot(suffix, variable);
            if (known === undefined) owned.push(tensor);
            weights.push({ name: `${variable.name}/${suffix}`, tensor });
          }
        });
      }
      await fresh.setWeights(weights);
    } catch (error) {
      fresh.dispose();
      throw error;
    } finally {
      // setWeights wrapped our tensors in new variables that share (ref-counted) buffers.
      tf.dispose(owned);
    }
    this.#optimizer.dispose();
    this.#optimizer = fresh;
    this.#variables = [...variables];
    this.#applyLearningRate(fresh);
  }

  /** Whether `suffix` names one of Adam's per-variable step products (a scalar slot). */
  #isStepProduct(suffix: string): boolean {
    return this.config.kind === OptimizerKind.ADAM && (suffix === 'acc_beta1' || suffix === 'acc_beta2');
  }

  /** The state of a slot the optimizer has not kept yet: Adam's step products start at β, the rest at zero. */
  #freshSlot(suffix: string, variable: tf.Variable): tf.Tensor {
    const c = this.config;
    if (c.kind === OptimizerKind.ADAM && suffix === 'acc_beta1') return tf.scalar(c.beta1);
    if (c.kind === OptimizerKind.ADAM && suffix === 'acc_beta2') return tf.scalar(c.beta2);
    return tf.zerosLike(variable);
  }

  #rebuildError(what: string, cause: unknown, removed: number): EsperError {
    return new EsperError(
      ErrorCode.TOLARIA_OPTIMIZER_REBUILD_FAILED,
      `${removed} trained variable(s) disappeared and ${what}; the optimizer cannot keep training them`,
      { cause, details: { removed } },
    );
  }

  #assertLive(): void {
    if (this.#disposed) throw new EsperError(ErrorCode.INVALID_STATE, 'optimizer manager is disposed');
  }
}
