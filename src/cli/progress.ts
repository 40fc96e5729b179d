/**
 * What a training prints on stderr while it runs: progress within an epoch (a redrawn bar on
 * a TTY; otherwise a line at most every {@link PROGRESS_INTERVAL_MS}), one line per epoch,
 * WARNING-and-above telemetry events and emergency signals. Epochs are counted from 1.
 */
import type { TelemetrySink } from '../core/index.js';
import { EmergencyLevel, TelemetryLevel, type EmergencySignal, type TelemetryPacket } from '../leyline/index.js';
import type { EmergencySink, EpochReport, StepReport } from '../tolaria/index.js';
import type { CliIo } from './scaffold.js';

/** Least wall time between two progress lines within an epoch off a TTY, in ms. */
export const PROGRESS_INTERVAL_MS = 2_000;

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Least wall time between progress lines within an epoch (not on a TTY), in ms. @default PROGRESS_INTERVAL_MS */
  readonly intervalMs?: number;
  /** Clock in ms (tests). @default performance.now */
  readonly now?: () => number;
}

/** Progress on stderr, driven by the trainer's `onStep` and `onEpoch` reports. */
export class Progress {
  readonly #tty: boolean;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #drawn = false;
  #lastDrawMs = 0;
  #lastLineMs: number;
  #lossSum = 0;
  #losses = 0;

  constructor(
    private readonly io: CliIo,
    private readonly epochs: number,
    options: ProgressOptions = {},
  ) {
    this.#tty = (io.stderr as { isTTY?: boolean }).isTTY === true;
    this.#intervalMs = options.intervalMs ?? PROGRESS_INTERVAL_MS;
    this.#now = options.now ?? (() => performance.now());
    this.#lastLineMs = this.#now();
  }

  step(r: StepReport): void {
    const now = this.#now();
    if (r.stepInEpoch === 1) {
      // Counted from the epoch's first step: data loading and forging before it are not epoch time.
      this.#lossSum = 0;
      this.#losses = 0;
      this.#lastLineMs = now;
    }
    this.#lossSum += r.loss;
    this.#losses += 1;
    const running = this.#lossSum / this.#losses;
    if (!this.#tty) {
      // The epoch line follows the last step; a line just before it says nothing new.
      if (r.stepInEpoch === r.stepsPerEpoch || now - this.#lastLineMs < this.#intervalMs) return;
      this.#lastLineMs = now;
      this.io.stderr.write(
        `epoch ${r.epoch + 1}/${this.epochs}: step ${r.stepInEpoch}/${r.stepsPerEpoch}, running loss ${running.toFixed(4)}, ${r.stepMs.toFixed(1)} ms/step\n`,
      );
      return;
    }
    if (r.stepInEpoch !== r.stepsPerEpoch && now - this.#lastDrawMs < 100) return;
    this.#lastDrawMs = now;
    const width = 24;
    const filled = Math.round((r.stepInEpoch / r.stepsPerEpoch) * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    this.io.stderr.write(
      `\r\x1b[2Kepoch ${r.epoch + 1}/${this.epochs} [${bar}] ${r.stepInEpoch}/${r.stepsPerEpoch} loss ${running.toFixed(4)} lr ${r.learningRate.toExponential(2)} ${r.stepMs.toFixed(1)} ms/step`,
    );
    this.#drawn = true;
  }

  epoch(r: EpochReport): void {
    this.clear();
    this.#lastLineMs = this.#now();
    this.io.stderr.write(
      `epoch ${r.epoch + 1}/${this.epochs}: train loss ${r.trainLoss.toFixed(4)} acc ${(r.trainAccuracy * 100).toFixed(2)} % | ` +
        `validation loss ${r.validationLoss.toFixed(4)} acc ${(r.validationAccuracy * 100).toFixed(2)} % | ${(r.durationMs / 1000).toFixed(1)} s` +
        `${r.failureReason === '' ? '' : ` | failed: ${r.failureReason}`}\n`,
    );
  }

  /** Clears the bar so a line can be printed. */
  clear(): void {
    if (this.#drawn) this.io.stderr.write('\r\x1b[2K');
    this.#drawn = false;
  }

  finish(): void {
    this.clear();
  }
}

/** Prints telemetry events at WARNING and above on stderr. */
export class StderrEventSink implements TelemetrySink {
  constructor(
    private readonly io: CliIo,
    private readonly progress: Progress,
  ) {}

  emit(packet: TelemetryPacket): void {
    for (const event of packet.events) {
      if (event.level < TelemetryLevel.WARNING) continue;
      this.progress.clear();
      const attributes = Object.entries(event.attributes)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      this.io.stderr.write(`! ${TelemetryLevel[event.level]} ${event.description} ${attributes}\n`);
    }
  }
}

/** Prints emergency signals on stderr. */
export class StderrEmergencySink implements EmergencySink {
  constructor(
    private readonly io: CliIo,
    private readonly progress: Progress,
  ) {}

  emit(signal: EmergencySignal): void {
    this.progress.clear();
    this.io.stderr.write(`! emergency ${EmergencyLevel[signal.level]} ${signal.reason} at step ${signal.globalStep}\n`);
  }
}
