/**
 * The state guard of a long-lived service (spec 02: `state` is a documented union, illegal
 * calls throw a typed error).
 */
import { ErrorCode, EsperError } from './errors.js';

/** Options of {@link ServiceState.require} and {@link ServiceState.transition}. */
export interface StateGuardOptions {
  /**
   * Code of the error thrown on an illegal call.
   * @default ErrorCode.INVALID_STATE
   */
  readonly code?: ErrorCode;
  /** Extra details of that error (the file, the run id). */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * The current state of one service, out of the union `S`, and the check that a call is
 * legal in it. The error of an illegal call reads `<owner> is <state>; cannot <action>`,
 * with `details` `{ owner, state, action }`.
 *
 * ```ts
 * readonly #state = new ServiceState<'created' | 'running' | 'closing' | 'closed'>('urza prefetch worker', 'created');
 * start(): void { this.#state.transition('created', 'running', 'start'); ... }
 * get state() { return this.#state.current; }
 * ```
 */
export class ServiceState<S extends string> {
  #current: S;

  /**
   * @param owner names the service in errors (`urza library`, `record log /var/x.wal`)
   * @param initial the state at construction
   */
  constructor(
    readonly owner: string,
    initial: S,
  ) {
    this.#current = initial;
  }

  /** The state now. */
  get current(): S {
    return this.#current;
  }

  /** Whether the state now is one of `states`. */
  is(...states: readonly S[]): boolean {
    return states.includes(this.#current);
  }

  /**
   * Throws unless the state now is `allowed` (or one of them).
   * @throws EsperError `INVALID_STATE` (or `options.code`)
   */
  require(allowed: S | readonly S[], action: string, options: StateGuardOptions = {}): void {
    const states: readonly S[] = typeof allowed === 'string' ? [allowed] : allowed;
    if (states.includes(this.#current)) return;
    throw new EsperError(options.code ?? ErrorCode.INVALID_STATE, `${this.owner} is ${this.#current}; cannot ${action}`, {
      details: { ...options.details, owner: this.owner, state: this.#current, action },
    });
  }

  /**
   * {@link require}s `from`, then moves to `to`.
   * @throws EsperError `INVALID_STATE` (or `options.code`); the state is then unchanged
   */
  transition(from: S | readonly S[], to: S, action: string, options: StateGuardOptions = {}): void {
    this.require(from, action, options);
    this.#current = to;
  }

  /** Moves to `to` unconditionally (a terminal step in a `finally`, a failure). */
  set(to: S): void {
    this.#current = to;
  }
}
