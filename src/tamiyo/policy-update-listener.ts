/**
 * Receives `PolicyUpdate`s from Oona's policy stream (what Simic publishes), verifies each
 * and stages the new network on the service's live {@link GnnPolicy}; it goes live at the
 * start of the next decision. A rejected update is the verifier's `policy_update_rejected`
 * telemetry and changes nothing; the delivery is acknowledged (retrying a forged or stale
 * update cannot help).
 */
import { closeOnce, ErrorCode, EsperError, ServiceState } from '../core/index.js';
import { BusMessageType, type PolicyUpdate } from '../leyline/index.js';
import type { Bus, Delivery, Subscription } from '../oona/index.js';
import { GnnPolicy } from './gnn-policy.js';
import type { PolicyUpdateVerifier } from './policy-update-verifier.js';
import type { TamiyoService } from './service.js';

/** Options of {@link PolicyUpdateListener}. */
export interface PolicyUpdateListenerOptions {
  readonly bus: Bus;
  readonly service: TamiyoService;
  readonly verifier: PolicyUpdateVerifier;
  /** Consumer group; each Tamiyo instance of a run needs every update. */
  readonly group: string;
  /** @default 'tamiyo' */
  readonly consumer?: string;
}

/** Counters of {@link PolicyUpdateListener}. */
export interface PolicyUpdateListenerStats {
  readonly received: number;
  readonly staged: number;
  readonly rejected: number;
}

/** States of a {@link PolicyUpdateListener}: `start` once, `close` for good. */
export type PolicyUpdateListenerState = 'created' | 'running' | 'closed';

/** Stages verified policy updates from the bus on a Tamiyo service. */
export class PolicyUpdateListener implements AsyncDisposable {
  readonly #options: PolicyUpdateListenerOptions;
  #subscription: Subscription | undefined;
  #received = 0;
  #staged = 0;
  #rejected = 0;
  readonly #state = new ServiceState<PolicyUpdateListenerState>('policy update listener', 'created');
  readonly #close = closeOnce(async () => {
    this.#state.set('closed');
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close();
  });

  constructor(options: PolicyUpdateListenerOptions) {
    this.#options = options;
  }

  /** Subscribes; resolves once updates published from now on will be received. */
  async start(): Promise<void> {
    if (this.#state.is('running')) return;
    this.#state.transition('created', 'running', 'start');
    try {
      this.#subscription = this.#options.bus.subscribe({
        group: this.#options.group,
        consumer: this.#options.consumer ?? 'tamiyo',
        types: [BusMessageType.POLICY_UPDATE],
        handler: (delivery) => {
          this.#receive(delivery);
        },
      });
    } catch (error) {
      // Not subscribed: a later start may try again.
      this.#state.set('created');
      throw error;
    }
    await this.#subscription.ready;
  }

  /** Verifies one update and stages it; returns whether it was staged. */
  offer(update: PolicyUpdate): boolean {
    this.#received += 1;
    const service = this.#options.service;
    const live = service.policy;
    if (!(live instanceof GnnPolicy)) {
      throw new EsperError(ErrorCode.INVALID_STATE, `policy updates need the GNN policy; the live policy is ${live.name}`);
    }
    const result = this.#options.verifier.verify(update, live.version);
    if (!result.ok) {
      this.#rejected += 1;
      return false;
    }
    live.stage(result.loaded);
    this.#staged += 1;
    return true;
  }

  /** Where the listener is in its lifecycle. */
  get state(): PolicyUpdateListenerState {
    return this.#state.current;
  }

  stats(): PolicyUpdateListenerStats {
    return { received: this.#received, staged: this.#staged, rejected: this.#rejected };
  }

  /** Unsubscribes (bounded by the bus's stop timeout). Idempotent: returns the first call's promise. */
  close(): Promise<void> {
    return this.#close();
  }

  /** Same as {@link PolicyUpdateListener.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#close();
  }

  #receive(delivery: Delivery): void {
    this.offer(delivery.message as PolicyUpdate);
  }
}
