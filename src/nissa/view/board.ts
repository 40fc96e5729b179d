/**
 * The live view's model: a bounded board of the fleet's runs, fed with every bus delivery
 * Nissa receives, read as JSON snapshots and as deltas since a sequence number. It keeps at
 * most `maxRuns` runs (evicting ended runs first), and each run keeps bounded curves, seeds,
 * commands and events (see {@link RunBoardOptions}); what it drops is counted in
 * {@link RunBoard.stats}.
 */
import { ErrorCode, EsperError } from '../../core/index.js';
import { BusMessageType, type BusMessage, type TelemetryPacket } from '../../leyline/index.js';
import { RunState, type RunLimits } from './run-state.js';
import type { AlertEvent, FleetDelta, ModeView, RunBoardStats, RunDelta, RunSummary } from './view-types.js';

/** Weatherlight's telemetry (src/weatherlight/names.ts; Weatherlight sits above Nissa, so the names are restated here). */
const WEATHERLIGHT_SOURCE = 'weatherlight';
/** Health indicator carrying Weatherlight's mode. */
const SYSTEM_MODE_INDICATOR = 'system_mode';

/** Bounds of a {@link RunBoard}. Every field is a positive integer. */
export interface RunBoardOptions {
  /** Runs kept; past it the run that ended longest ago goes first, else the one seen longest ago. @default 50 */
  readonly maxRuns?: number;
  /** Points per curve before it halves itself. @default 500 */
  readonly maxPointsPerCurve?: number;
  /** Seeds per run; past it the seed that ended longest ago goes first. @default 64 */
  readonly maxSeedsPerRun?: number;
  /** Stage intervals per seed (oldest dropped first). @default 64 */
  readonly maxIntervalsPerSeed?: number;
  /** Alpha points per seed before they halve. @default 128 */
  readonly maxAlphaPointsPerSeed?: number;
  /** Commands per run (oldest dropped first). @default 200 */
  readonly maxCommandsPerRun?: number;
  /** Timeline events per run (oldest dropped first). @default 300 */
  readonly maxEventsPerRun?: number;
  /** Resolved alerts kept beside the active ones. @default 50 */
  readonly maxResolvedAlerts?: number;
  /** Ids of evicted runs remembered so late messages do not bring them back. @default 1024 */
  readonly maxEvictedRunIds?: number;
}

/** {@link RunBoardOptions} with every default applied. */
export type ResolvedRunBoardOptions = Required<RunBoardOptions>;

/** The defaults of {@link RunBoardOptions}. */
export const RUN_BOARD_DEFAULTS: ResolvedRunBoardOptions = {
  maxRuns: 50,
  maxPointsPerCurve: 500,
  maxSeedsPerRun: 64,
  maxIntervalsPerSeed: 64,
  maxAlphaPointsPerSeed: 128,
  maxCommandsPerRun: 200,
  maxEventsPerRun: 300,
  maxResolvedAlerts: 50,
  maxEvictedRunIds: 1024,
};

/** Merges `options` over the defaults; throws `ESPER_CORE_INVALID_ARGUMENT` naming a bad field. */
export function resolveRunBoardOptions(options: RunBoardOptions = {}): ResolvedRunBoardOptions {
  const resolved = { ...RUN_BOARD_DEFAULTS };
  for (const key of Object.keys(RUN_BOARD_DEFAULTS) as (keyof ResolvedRunBoardOptions)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new EsperError(ErrorCode.INVALID_ARGUMENT, `RunBoardOptions.${key} must be a positive integer, got ${String(value)}`, {
        details: { field: key },
      });
    }
    resolved[key] = value;
  }
  return resolved;
}

/** What changed: a run (`runId`) or the fleet-wide alerts and mode (`runId` undefined). */
export interface RunBoardChange {
  readonly runId?: string;
}

/** Called synchronously after every change; must not throw (a throw is swallowed). */
export type RunBoardListener = (change: RunBoardChange) => void;

/** The fleet's runs, bounded, with snapshots and deltas for the live view. */
export class RunBoard {
  readonly #options: ResolvedRunBoardOptions;
  readonly #limits: RunLimits;
  readonly #runs = new Map<string, RunState>();
  readonly #evicted = new Set<string>();
  /** Evicted runs with the sequence they left at, for fleet deltas. */
  readonly #removed: { runId: string; seq: number }[] = [];
  /** Highest sequence of a removal no longer in {@link #removed}: older cursors get a full list. */
  #removedTrimmedSeq = 0;
  readonly #activeAlerts = new Map<string, AlertEvent>();
  readonly #resolvedAlerts: AlertEvent[] = [];
  #alertsSeq = 0;
  #mode: ModeView = { mode: 'unknown', sinceMs: 0 };
  #modeSeq = 0;
  #seq = 0;
  readonly #listeners = new Set<RunBoardListener>();
  #runsEvicted = 0;
  #lateMessagesIgnored = 0;
  #unroutedMessages = 0;
  #retiredCounters = { pointsDecimated: 0, seedsEvicted: 0, intervalsDropped: 0, commandsDropped: 0, eventsDropped: 0 };

  constructor(options: RunBoardOptions = {}) {
    this.#options = resolveRunBoardOptions(options);
    this.#limits = {
      maxPointsPerCurve: this.#options.maxPointsPerCurve,
      maxSeeds: this.#options.maxSeedsPerRun,
      maxIntervalsPerSeed: this.#options.maxIntervalsPerSeed,
      maxAlphaPoints: this.#options.maxAlphaPointsPerSeed,
      maxCommands: this.#options.maxCommandsPerRun,
      maxEvents: this.#options.maxEventsPerRun,
    };
  }

  /** The resolved bounds. */
  get options(): ResolvedRunBoardOptions {
    return this.#options;
  }

  /** Sequence of the latest change; deltas are taken relative to it. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * One bus delivery. `type` says what `message` is (a mismatch is ignored); `receivedAtMs`
   * is the wall time Nissa received it. Types the view does not show are ignored.
   */
  ingest(type: BusMessageType, message: BusMessage, receivedAtMs: number): void {
    switch (type) {
      case BusMessageType.SYSTEM_STATE:
        if (message.$typeName !== 'esper.leyline.v1.SystemStatePacket') return;
        this.#toRun(message.trainingRunId, receivedAtMs, (run, seq) => run.onState(message, seq, receivedAtMs));
        return;
      case BusMessageType.TELEMETRY:
        if (message.$typeName !== 'esper.leyline.v1.TelemetryPacket') return;
        this.#telemetry(message, receivedAtMs);
        return;
      case BusMessageType.ADAPTATION_COMMAND:
        if (message.$typeName !== 'esper.leyline.v1.AdaptationCommand') return;
        this.#toRun(message.trainingRunId, receivedAtMs, (run, seq) => run.onCommand(message, seq, receivedAtMs));
        return;
      case BusMessageType.COMMAND_ACK:
        if (message.$typeName !== 'esper.leyline.v1.CommandAck') return;
        this.#toRun(message.trainingRunId, receivedAtMs, (run, seq) => run.onAck(message, seq, receivedAtMs));
        return;
      case BusMessageType.FIELD_REPORT:
        if (message.$typeName !== 'esper.leyline.v1.FieldReport') return;
        this.#toRun(message.trainingRunId, receivedAtMs, (run, seq) => run.onFieldReport(message, seq, receivedAtMs));
        return;
      case BusMessageType.RUN_ANNOUNCEMENT:
        if (message.$typeName !== 'esper.leyline.v1.RunAnnouncement') return;
        this.#toRun(message.trainingRunId, receivedAtMs, (run, seq) => run.onAnnouncement(message, seq, receivedAtMs));
        return;
      default:
        return;
    }
  }

  /**
   * An alert fired (no `resolvedAtMs`) or resolved. Alerts are keyed by name and run; a
   * resolved one moves to the bounded history.
   */
  alert(event: AlertEvent): void {
    const key = `${event.name}\u0000${event.trainingRunId ?? ''}`;
    if (event.resolvedAtMs === undefined) {
      this.#activeAlerts.set(key, { ...event });
    } else {
      this.#activeAlerts.delete(key);
      this.#resolvedAlerts.unshift({ ...event });
      this.#resolvedAlerts.length = Math.min(this.#resolvedAlerts.length, this.#options.maxResolvedAlerts);
    }
    this.#alertsSeq = ++this.#seq;
    this.#notify({});
  }

  /** Weatherlight's mode (`operational`, `degraded`, ...) at `atMs` (default: now). */
  mode(mode: string, atMs: number = Date.now()): void {
    if (mode === this.#mode.mode) return;
    this.#mode = { mode, sinceMs: atMs };
    this.#modeSeq = ++this.#seq;
    this.#notify({});
  }

  /** Weatherlight's current mode. */
  currentMode(): ModeView {
    return this.#mode;
  }

  /** Active alerts (most recent first), then resolved ones (most recently resolved first). */
  alerts(): AlertEvent[] {
    const active = [...this.#activeAlerts.values()].sort((a, b) => b.firedAtMs - a.firedAtMs);
    return [...active, ...this.#resolvedAlerts];
  }

  /** Summaries of the runs kept, most recently seen first. */
  runs(): RunSummary[] {
    return this.#sortedRuns().map((run) => run.summary());
  }

  /** The full state of a run, or `undefined` for a run not on the board. */
  run(runId: string): RunDelta | undefined {
    return this.#runs.get(runId)?.delta(0, this.#seq);
  }

  /**
   * What changed in a run since `since` (0: everything; a `full` delta replaces a client's
   * copy), or `undefined` for a run not on the board.
   */
  runDelta(runId: string, since: number): RunDelta | undefined {
    return this.#runs.get(runId)?.delta(since, this.#seq);
  }

  /** What changed fleet-wide since `since` (0: everything). */
  fleetDelta(since: number): FleetDelta {
    const full = since <= 0 || since < this.#removedTrimmedSeq;
    const runs = this.#sortedRuns()
      .filter((run) => full || run.updatedSeq > since)
      .map((run) => run.summary());
    return {
      seq: this.#seq,
      full,
      runs,
      removed: full ? [] : this.#removed.filter((r) => r.seq > since).map((r) => r.runId),
      ...(full || this.#alertsSeq > since ? { alerts: this.alerts() } : {}),
      ...(full || this.#modeSeq > since ? { mode: this.#mode } : {}),
    };
  }

  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: RunBoardListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** What the board dropped to stay bounded, and what it ignored. */
  stats(): RunBoardStats {
    const counters = { ...this.#retiredCounters };
    for (const run of this.#runs.values()) {
      counters.pointsDecimated += run.pointsDecimated;
      counters.seedsEvicted += run.seedsEvicted;
      counters.intervalsDropped += run.intervalsDropped;
      counters.commandsDropped += run.commandsDropped;
      counters.eventsDropped += run.eventsDropped;
    }
    return {
      runs: this.#runs.size,
      runsEvicted: this.#runsEvicted,
      ...counters,
      lateMessagesIgnored: this.#lateMessagesIgnored,
      unroutedMessages: this.#unroutedMessages,
    };
  }

  #telemetry(packet: TelemetryPacket, receivedAtMs: number): void {
    if (packet.sourceSubsystem === WEATHERLIGHT_SOURCE) {
      const mode = packet.systemHealth?.indicators[SYSTEM_MODE_INDICATOR];
      if (mode !== undefined && mode.length > 0) this.mode(mode, receivedAtMs);
      if (packet.trainingRunId.length === 0) return;
    }
    this.#toRun(packet.trainingRunId, receivedAtMs, (run, seq) => run.onTelemetry(packet, seq, receivedAtMs));
  }

  /** Applies `apply` to the run (created when new), stamped with the next sequence. */
  #toRun(runId: string, atMs: number, apply: (run: RunState, seq: number) => void): void {
    if (runId.length === 0) {
      this.#unroutedMessages += 1;
      return;
    }
    if (this.#evicted.has(runId)) {
      this.#lateMessagesIgnored += 1;
      return;
    }
    const seq = ++this.#seq;
    let run = this.#runs.get(runId);
    if (run === undefined) {
      if (this.#runs.size >= this.#options.maxRuns) this.#evictRun(seq);
      run = new RunState(runId, atMs, this.#limits);
      this.#runs.set(runId, run);
    }
    apply(run, seq);
    this.#notify({ runId });
  }

  /** Evicts the run that ended longest ago, else the run seen longest ago. */
  #evictRun(seq: number): void {
    let victim: RunState | undefined;
    for (const run of this.#runs.values()) {
      if (victim === undefined || (run.ended && !victim.ended) || (run.ended === victim.ended && run.lastSeenMs < victim.lastSeenMs)) {
        victim = run;
      }
    }
    if (victim === undefined) return;
    this.#runs.delete(victim.runId);
    this.#runsEvicted += 1;
    this.#retiredCounters.pointsDecimated += victim.pointsDecimated;
    this.#retiredCounters.seedsEvicted += victim.seedsEvicted;
    this.#retiredCounters.intervalsDropped += victim.intervalsDropped;
    this.#retiredCounters.commandsDropped += victim.commandsDropped;
    this.#retiredCounters.eventsDropped += victim.eventsDropped;
    this.#evicted.add(victim.runId);
    if (this.#evicted.size > this.#options.maxEvictedRunIds) {
      const oldest = this.#evicted.values().next().value;
      if (oldest !== undefined) this.#evicted.delete(oldest);
    }
    this.#removed.push({ runId: victim.runId, seq });
    // Bounded like the rest: a cursor older than what was trimmed gets the full list.
    while (this.#removed.length > this.#options.maxRuns) {
      const trimmed = this.#removed.shift();
      if (trimmed !== undefined) this.#removedTrimmedSeq = trimmed.seq;
    }
  }

  #sortedRuns(): RunState[] {
    return [...this.#runs.values()].sort((a, b) => b.lastSeenMs - a.lastSeenMs || a.runId.localeCompare(b.runId));
  }

  #notify(change: RunBoardChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure must not stop the ingest path; listeners report their own errors.
      }
    }
  }
}
