/**
 * The reports a finished run leaves in its directory for people: `report.html` and
 * TensorBoard scalar event files, one directory per arm under `tensorboard/`, so that
 * `tensorboard --logdir var/runs` shows every run's arms side by side.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { RunReportData } from './report/report-data.js';
import { writeReportHtml } from './report/report-html.js';
import { openScalarWriter, type ScalarWriterOptions } from './tensorboard/scalar-writer.js';

/** The scalars written per epoch, by TensorBoard tag. */
export const EPOCH_SCALAR_TAGS = Object.freeze({
  validationAccuracy: 'validation/accuracy',
  validationLoss: 'validation/loss',
  trainLoss: 'train/loss',
} as const);

/** What {@link writeRunReports} wrote. */
export interface RunReportFiles {
  readonly reportHtml: string;
  /** One event file per arm. */
  readonly eventFiles: readonly string[];
}

/**
 * Writes `<runDir>/report.html` and `<runDir>/tensorboard/<arm>/events.out.tfevents.*`
 * (per epoch, at the global step of its end: `validation/accuracy`, `validation/loss`,
 * `train/loss`).
 * @throws EsperError `NISSA_REPORT_ASSET_MISSING`, `NISSA_TENSORBOARD_WRITE_FAILED`
 */
export async function writeRunReports(runDir: string, data: RunReportData, options: ScalarWriterOptions = {}): Promise<RunReportFiles> {
  const reportHtml = path.join(runDir, 'report.html');
  await mkdir(runDir, { recursive: true });
  await writeReportHtml(reportHtml, data);
  const eventFiles: string[] = [];
  for (const arm of data.arms) {
    const writer = await openScalarWriter(path.join(runDir, 'tensorboard', arm.name), options);
    let closed = false;
    try {
      for (const e of arm.epochs) {
        writer.scalar(EPOCH_SCALAR_TAGS.validationAccuracy, e.globalStep, e.validationAccuracy);
        writer.scalar(EPOCH_SCALAR_TAGS.validationLoss, e.globalStep, e.validationLoss);
        writer.scalar(EPOCH_SCALAR_TAGS.trainLoss, e.globalStep, e.trainLoss);
      }
      await writer.close();
      closed = true;
    } finally {
      // The first failure is the one reported; closing after it only releases the file.
      if (!closed) await writer.close().catch(() => undefined);
    }
    eventFiles.push(writer.file);
  }
  return { reportHtml, eventFiles };
}
