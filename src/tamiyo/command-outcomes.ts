/**
 * What became of the commands Tamiyo issued. A command's fate reaches Tamiyo either from
 * the trainer directly (`commandOutcome` with Tolaria's `CommandOutcome`) or over the bus
 * as Kasmina's `CommandAck` ({@link fateOfAck}); both land in one {@link CommandLedger},
 * which counts each issued command once: applied, refused (by status and reason), or still
 * pending. A second fate for a settled command (a redelivered ack) and a fate for a command
 * this Tamiyo did not issue are ignored and counted.
 */
import { CommandAckStatus, type CommandAck } from '../leyline/index.js';
import { CommandOutcomeStatus, type Controller } from '../tolaria/index.js';

/**
 * The fate statuses: Tolaria's {@link CommandOutcomeStatus} and `run_ended` (the run ended
 * before the command was applied: Kasmina's RUN_ENDED acknowledgement).
 */
export const CommandFateStatus = { ...CommandOutcomeStatus, RUN_ENDED: 'run_ended' } as const;
/** One of {@link CommandFateStatus}. */
export type CommandFateStatus = (typeof CommandFateStatus)[keyof typeof CommandFateStatus];

/** The fate of one command Tamiyo issued: Tolaria's outcome, or an acknowledgement's. */
export interface CommandFate {
  readonly commandId: string;
  readonly status: CommandFateStatus;
  /** Why, for every status but `applied` (then ''). */
  readonly reason: string;
  /** Optimizer steps the run had taken when the fate was known (acknowledgements carry it). */
  readonly globalStep?: number;
}

/** A {@link Controller} told each command's {@link CommandFate} (Tamiyo's service). */
export interface FateController extends Controller {
  /** Told the fate of a command it issued; must not throw. */
  commandOutcome?(fate: CommandFate): void;
}

const FATE_OF_ACK: Readonly<Partial<Record<CommandAckStatus, CommandFateStatus>>> = {
  [CommandAckStatus.APPLIED]: CommandFateStatus.APPLIED,
  [CommandAckStatus.REJECTED]: CommandFateStatus.REJECTED,
  [CommandAckStatus.NOT_APPLIED]: CommandFateStatus.NOT_APPLIED,
  [CommandAckStatus.TIMED_OUT]: CommandFateStatus.TIMED_OUT,
  [CommandAckStatus.FAILED]: CommandFateStatus.FAILED,
  [CommandAckStatus.RUN_ENDED]: CommandFateStatus.RUN_ENDED,
};

/** The fate an acknowledgement reports, or undefined for an unspecified status (the command stays pending). */
export function fateOfAck(ack: CommandAck): CommandFate | undefined {
  const status = FATE_OF_ACK[ack.status];
  if (status === undefined) return undefined;
  return { commandId: ack.commandId, status, reason: ack.reason, globalStep: Number(ack.globalStep) };
}

/** Whether a command with this fate never took effect (its field report is aborted, not judged). */
export function neverApplied(status: CommandFateStatus): boolean {
  // A timed-out command may still have taken effect: its window stays open.
  return status !== CommandFateStatus.APPLIED && status !== CommandFateStatus.TIMED_OUT;
}

/**
 * What became of the commands Tamiyo issued. `TamiyoStats.commands` (issued) =
 * applied + rejected + notApplied + timedOut + failed + runEnded + pending.
 */
export interface TamiyoCommandOutcomes {
  readonly applied: number;
  /** Refused by a security or dependency check (signature, freshness, nonce, ids, run). */
  readonly rejected: number;
  /** Refused by their owner (a gate, an illegal transition, an unsupported field, ...). */
  readonly notApplied: number;
  /** Their owner missed its deadline; whether they took effect is unknown. */
  readonly timedOut: number;
  readonly failed: number;
  /** Still queued when the run ended: never applied. */
  readonly runEnded: number;
  /** Issued, fate not known (yet). */
  readonly pending: number;
  /** `rejected` by reason (`stale_command`, `nonce_replayed`, ...). */
  readonly rejectionsByReason: Readonly<Record<string, number>>;
  /** `notApplied` by reason. */
  readonly notAppliedByReason: Readonly<Record<string, number>>;
  /** Fates ignored: a second one for a settled command, or one for a command not issued here. */
  readonly ignored: number;
}

const COUNTER_OF: Readonly<Record<CommandFateStatus, Exclude<keyof TamiyoCommandOutcomes, 'pending' | 'ignored' | `${string}ByReason`>>> = {
  [CommandFateStatus.APPLIED]: 'applied',
  [CommandFateStatus.REJECTED]: 'rejected',
  [CommandFateStatus.NOT_APPLIED]: 'notApplied',
  [CommandFateStatus.TIMED_OUT]: 'timedOut',
  [CommandFateStatus.FAILED]: 'failed',
  [CommandFateStatus.RUN_ENDED]: 'runEnded',
};

/**
 * Counts each issued command's fate once. Holds the ids of pending commands only (a
 * settled command is forgotten, so a later copy of its fate is one of `ignored`).
 */
export class CommandLedger {
  readonly #pending = new Set<string>();
  readonly #counts = { applied: 0, rejected: 0, notApplied: 0, timedOut: 0, failed: 0, runEnded: 0, ignored: 0 };
  readonly #rejections = new Map<string, number>();
  readonly #notApplied = new Map<string, number>();

  /** Records a command as issued and pending. */
  issue(commandId: string): void {
    this.#pending.add(commandId);
  }

  /** Settles a pending command; returns false (and counts it ignored) for any other. */
  settle(fate: CommandFate): boolean {
    if (!this.#pending.delete(fate.commandId)) {
      this.#counts.ignored += 1;
      return false;
    }
    this.#counts[COUNTER_OF[fate.status]] += 1;
    const byReason =
      fate.status === CommandFateStatus.REJECTED
        ? this.#rejections
        : fate.status === CommandFateStatus.NOT_APPLIED
          ? this.#notApplied
          : undefined;
    byReason?.set(fate.reason, (byReason.get(fate.reason) ?? 0) + 1);
    return true;
  }

  /** Counters so far. */
  stats(): TamiyoCommandOutcomes {
    return {
      ...this.#counts,
      pending: this.#pending.size,
      rejectionsByReason: Object.fromEntries(this.#rejections),
      notAppliedByReason: Object.fromEntries(this.#notApplied),
    };
  }
}

/**
 * One line for a run report: `issued 5, applied 3, rejected 1 (stale_command: 1), pending 1`
 * (the other statuses only when non-zero).
 */
export function formatCommandOutcomes(issued: number, outcomes: TamiyoCommandOutcomes): string {
  const reasons = (byReason: Readonly<Record<string, number>>): string => {
    const entries = Object.entries(byReason);
    return entries.length === 0 ? '' : ` (${entries.map(([reason, count]) => `${reason || 'no reason'}: ${count}`).join(', ')})`;
  };
  const parts = [`issued ${issued}`, `applied ${outcomes.applied}`, `rejected ${outcomes.rejected}${reasons(outcomes.rejectionsByReason)}`];
  if (outcomes.notApplied > 0) parts.push(`not applied ${outcomes.notApplied}${reasons(outcomes.notAppliedByReason)}`);
  if (outcomes.timedOut > 0) parts.push(`timed out ${outcomes.timedOut}`);
  if (outcomes.failed > 0) parts.push(`failed ${outcomes.failed}`);
  if (outcomes.runEnded > 0) parts.push(`run ended ${outcomes.runEnded}`);
  parts.push(`pending ${outcomes.pending}`);
  return parts.join(', ');
}
