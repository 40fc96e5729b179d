/** The persisted form of a field-report builder's open windows, and its schema. */
import { z } from 'zod';
import { ErrorCode, parsePersisted } from '../core/index.js';
import type { CommandType, RiskReason, SeedLifecycleStage } from '../leyline/index.js';
import { DELTA_FIELDS, type FieldReportDeltaField, type ObservationWindowState } from './field-report-window.js';

/** The persisted form of a builder's open windows (`FieldReportBuilder.toJSON`). */
export interface FieldReportBuilderSnapshot {
  readonly version: 1;
  readonly trainingRunId: string;
  readonly windows: readonly ObservationWindowState[];
}

const count = z.number().int().min(0);
const finite = z.number().finite();

const DeltaSchema = z.strictObject(
  Object.fromEntries(DELTA_FIELDS.map((field) => [field, finite.optional()])) as Record<FieldReportDeltaField, z.ZodOptional<z.ZodNumber>>,
);

const WindowSchema = z.strictObject({
  commandId: z.string().min(1),
  commandType: count.transform((v) => v as CommandType),
  seedId: z.string(),
  blueprintId: z.string(),
  reason: count.transform((v) => v as RiskReason),
  policyVersion: z.string(),
  startEpoch: count,
  targetEpochs: z.number().int().min(1),
  openedAtMs: finite,
  epochsObserved: count,
  lastEpoch: count.nullable(),
  lossDeltaSum: finite,
  lossDeltaMin: finite.nullable(),
  lossDeltaMax: finite.nullable(),
  hookLatencySumMs: finite,
  hookLatencySamples: count,
  firstValidationAccuracy: finite.nullable(),
  lastValidationAccuracy: finite.nullable(),
  hasCritical: z.boolean(),
  seedStage: count.transform((v) => v as SeedLifecycleStage),
  contribution: finite.nullable(),
  decisionDelta: DeltaSchema,
});

const SnapshotSchema = z
  .strictObject({ version: z.literal(1), trainingRunId: z.string(), windows: z.array(WindowSchema) })
  .superRefine((snapshot, ctx) => {
    const seen = new Set<string>();
    snapshot.windows.forEach((window, i) => {
      if (seen.has(window.commandId)) ctx.addIssue({ code: 'custom', path: ['windows', i, 'commandId'], message: 'duplicate command id' });
      seen.add(window.commandId);
    });
  });

/**
 * The windows of `snapshot` for run `trainingRunId`.
 * @throws EsperError TAMIYO_FIELD_REPORT_INVALID naming `source` (`details.path`) and the bad
 *   paths (`details.paths`) when the snapshot is malformed or belongs to another run.
 */
export function parseWindowsSnapshot(snapshot: unknown, trainingRunId: string, source: string): ObservationWindowState[] {
  const from = { what: `field-report windows snapshot ${source}`, details: { path: source }, code: ErrorCode.TAMIYO_FIELD_REPORT_INVALID };
  const parsed = parsePersisted(SnapshotSchema, snapshot, from);
  const ofRun = z.literal(trainingRunId, { message: `expected run ${JSON.stringify(trainingRunId)}` });
  parsePersisted(z.object({ trainingRunId: ofRun }), parsed, from);
  return parsed.windows.map((w) => ({ ...w, decisionDelta: dropUndefined(w.decisionDelta) }));
}

function dropUndefined(delta: Partial<Record<FieldReportDeltaField, number | undefined>>): Partial<Record<FieldReportDeltaField, number>> {
  const out: Partial<Record<FieldReportDeltaField, number>> = {};
  for (const [key, value] of Object.entries(delta)) if (value !== undefined) out[key as FieldReportDeltaField] = value;
  return out;
}
