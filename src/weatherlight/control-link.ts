/**
 * The trainer's controller when its controller (Tamiyo) is reached over Oona: every state
 * packet is published on the bus, and commands come back through the run's command inbox
 * (Kasmina's, where operator commands arrive too), one per step.
 *
 * - `lockstep` (embedded): each packet is a request; the step waits for the
 *   `ControlDecision` that answers it and, when it names a command, for that command to
 *   reach the inbox, and hands it out first. Tamiyo sees the same packets in the same order
 *   and its command applies at the same step as a direct call, so an embedded run makes
 *   the same decisions whether or not the bus is between them. With a controller that
 *   decides at epoch boundaries only (`stepRequests: false`), step packets are published
 *   without waiting — the controller still sees each, in order, before the epoch's packet —
 *   which keeps the round trip off every step.
 * - `async` (a remote controller): the packet is published and the step goes on; a command
 *   applies at the first step after it arrives, if it is still fresh for Kasmina's verifier.
 *   An epoch's packet carries a correlation id, so the controller answers it with a
 *   `ControlDecision`; nothing waits for that answer during the run. At the run's end
 *   {@link ControlLink.settle} waits, bounded, until the inbox has read the answer to the
 *   newest one, and with it every command the controller issued up to that packet. Without
 *   this barrier, a command answering the run's last packet, decided while the trainer was
 *   closing, reached the bus after the inbox stopped reading: it was never counted and never
 *   given a fate. With it, such a command is received and acknowledged RUN_ENDED.
 *
 * Packets published without waiting go out in order, one after the other, behind the step:
 * a step never waits for an earlier packet's store reply while fewer than `maxInFlight` are
 * outstanding (on Redis the reply of the previous step's `XADD` is usually still unread in
 * the socket when the next step's packet is ready, and waiting for it cost a forced turn of
 * the event loop, and a whole round trip when the publisher refreshed its depth reading).
 * A publish that failed surfaces at the next step that finds it settled (its packet is then
 * not published), a few steps late at most, never lost; a lockstep request first waits for
 * every earlier packet, so the controller still sees them in order.
 *
 * A lockstep wait is bounded by the trainer's controller deadline (its `signal`) and by
 * `timeoutMs`; a decision that arrives later leaves its command in the inbox for a later step.
 */
import { randomUUID } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { optionChecks } from '../core/index.js';
import type { CommandInbox } from '../kasmina/index.js';
import {
  BusMessageType,
  RunAnnouncementSchema,
  RunPhase,
  type AdaptationCommand,
  type ControlDecision,
  type HostDescriptor,
  type SystemStatePacket,
} from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import type { CallOptions, CommandOutcome, Controller } from '../tolaria/index.js';

/** How the trainer waits for its controller (see the module comment). */
export type ControlMode = 'lockstep' | 'async';

/** Options of {@link ControlLink}. */
export interface ControlLinkOptions {
  readonly bus: Bus;
  /** The run's command inbox, started; not closed here. */
  readonly inbox: CommandInbox;
  readonly mode: ControlMode;
  /** Longest lockstep wait for a decision, in ms (≥ 1). */
  readonly timeoutMs: number;
  /** Lockstep: wait for the answer to a step's packet too (false for an epoch-only controller). @default true */
  readonly stepRequests?: boolean;
  /**
   * Packets published without waiting that may be outstanding (queued or unanswered by the
   * store) before a step waits for the oldest to settle. Integer ≥ 1.
   * @default 4
   */
  readonly maxInFlight?: number;
  /**
   * Announce the run to a controller serving many runs (`RunAnnouncement`): {@link ControlLink.announce}
   * at open, again before each epoch's packet, {@link ControlLink.announceEnd} at close.
   * @default not announced (an embedded controller knows its run)
   */
  readonly announce?: { readonly trainingRunId: string; readonly host: HostDescriptor; readonly seed: number };
}

/** Defaults of {@link ControlLinkOptions}. */
export const CONTROL_LINK_DEFAULTS = Object.freeze({ maxInFlight: 4 });

/** Counters of {@link ControlLink}. */
export interface ControlLinkStats {
  readonly packetsPublished: number;
  readonly decisions: number;
  readonly commandsNamed: number;
}

/** A {@link Controller} that reaches the real controller over the bus. */
export class ControlLink implements Controller {
  readonly #o: ControlLinkOptions;
  #published = 0;
  #decisions = 0;
  #named = 0;
  readonly #maxInFlight: number;
  /** Unwaited publishes not yet settled, oldest first; each settles, never rejects. */
  readonly #inFlight: Promise<void>[] = [];
  /** The newest unwaited publish (the next one starts after it settles). */
  #tail: Promise<void> = Promise.resolve();
  /** The first failure of an unwaited publish not yet surfaced. */
  #failure: { readonly error: unknown } | undefined;
  /** Async: the newest epoch packet published for an answer ({@link settle} waits for it). */
  #lastAsked: string | undefined;

  /** @throws EsperError `INVALID_ARGUMENT` naming a bad option. */
  constructor(options: ControlLinkOptions) {
    const check = optionChecks('ControlLink');
    check.oneOf('mode', options.mode, ['lockstep', 'async'] as const);
    check.integer('timeoutMs', options.timeoutMs, { min: 1 });
    this.#maxInFlight = check.integer('maxInFlight', options.maxInFlight ?? CONTROL_LINK_DEFAULTS.maxInFlight, { min: 1 });
    this.#o = options;
  }

  evaluateStep(state: SystemStatePacket, options: CallOptions): Promise<AdaptationCommand | undefined> {
    return this.#exchange(state, options, this.#o.stepRequests !== false, false);
  }

  async evaluateEpoch(state: SystemStatePacket, options: CallOptions): Promise<AdaptationCommand | undefined> {
    // Before the packet, so a controller restarted since the last epoch takes the run up again.
    await this.announce(state.globalStep);
    return this.#exchange(state, options, true, true);
  }

  /**
   * Async mode: waits until the run's inbox has read the controller's answer to the newest
   * epoch packet (see the module comment), at most `timeoutMs`. Call it after the last step
   * and before the inbox closes. Resolves true when the answer was read or nothing was asked
   * (lockstep waited at every request already), false when `timeoutMs` passed first or a
   * publish failed: commands decided later never reach the run.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    const packetId = this.#lastAsked;
    if (packetId === undefined) return true;
    const deadline = AbortSignal.timeout(timeoutMs);
    await Promise.race([this.#tail, new Promise((resolve) => deadline.addEventListener('abort', resolve, { once: true }))]);
    if (this.#failure !== undefined) return false;
    try {
      await this.#o.inbox.waitForDecision(packetId, deadline);
      return true;
    } catch {
      return false;
    }
  }

  /** Publishes the run's RUNNING announcement (with `announce`; else nothing). */
  async announce(globalStep = 0n): Promise<void> {
    await this.#announcement(RunPhase.RUNNING, globalStep, '');
  }

  /**
   * Publishes the run's ENDED announcement with `reason` (with `announce`; else nothing),
   * after the packets still outstanding settled.
   */
  async announceEnd(reason: string, globalStep = 0n): Promise<void> {
    await this.#tail;
    await this.#announcement(RunPhase.ENDED, globalStep, reason);
  }

  async #announcement(phase: RunPhase, globalStep: bigint, reason: string): Promise<void> {
    const run = this.#o.announce;
    if (run === undefined) return;
    await this.#o.bus.publish(
      create(RunAnnouncementSchema, {
        trainingRunId: run.trainingRunId,
        phase,
        host: run.host,
        seed: BigInt(run.seed),
        globalStep,
        reason,
      }),
      { trainingRunId: run.trainingRunId },
    );
  }

  /** Acknowledged on the bus by the inbox, as a reply to the command's message. */
  commandOutcome(outcome: CommandOutcome): void {
    this.#o.inbox.commandOutcome(outcome);
  }

  stats(): ControlLinkStats {
    return { packetsPublished: this.#published, decisions: this.#decisions, commandsNamed: this.#named };
  }

  async #exchange(state: SystemStatePacket, options: CallOptions, wait: boolean, epoch: boolean): Promise<AdaptationCommand | undefined> {
    const { bus, inbox } = this.#o;
    const signal = options.signal;
    const lockstepRequest = this.#o.mode === 'lockstep' && wait;
    // A request goes after every earlier packet; an unwaited packet waits only at the bound.
    while (this.#inFlight.length >= (lockstepRequest ? 1 : this.#maxInFlight)) await this.#inFlight[0];
    // An earlier unwaited publish that failed surfaces here, a few steps late, rather than never.
    this.#surfaceFailure();
    if (!lockstepRequest) {
      // Not waited for: the step goes on while the bus seals and appends the packet (the
      // controller's own work happens between steps, not inside this call).
      const ask = this.#o.mode === 'async' && epoch;
      this.#publishBehind(state, ask ? randomUUID() : '');
      if (ask) this.#lastAsked = state.packetId;
    } else {
      const reply = await bus.request(state, { replyType: BusMessageType.CONTROL_DECISION, timeoutMs: this.#o.timeoutMs, signal });
      this.#published += 1;
      this.#decisions += 1;
      const { commandId } = reply.message as ControlDecision;
      if (commandId !== '') {
        this.#named += 1;
        await inbox.take(commandId, signal);
      }
    }
    return inbox.evaluateStep(state, options);
  }

  /** Throws the first failure of an unwaited publish not yet surfaced. */
  #surfaceFailure(): void {
    const failure = this.#failure;
    if (failure === undefined) return;
    this.#failure = undefined;
    throw failure.error;
  }

  /**
   * Publishes `state` now when nothing is outstanding, else after the newest outstanding
   * publish; with a `correlationId` (not empty), the controller answers it.
   */
  #publishBehind(state: SystemStatePacket, correlationId: string): void {
    const { bus } = this.#o;
    const publish = (): Promise<void> =>
      bus.publish(state, correlationId === '' ? undefined : { correlationId }).then(
        () => {
          this.#published += 1;
        },
        (error: unknown) => {
          // Kept for the next step; observed here, so it is never an unhandled rejection.
          this.#failure ??= { error };
        },
      );
    // In order: at most one publish of this link is with the store at a time.
    const settled = this.#inFlight.length === 0 ? publish() : this.#tail.then(publish);
    this.#tail = settled;
    this.#inFlight.push(settled);
    void settled.finally(() => {
      void this.#inFlight.splice(this.#inFlight.indexOf(settled), 1);
    });
  }
}
