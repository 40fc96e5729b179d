/**
 * Typed training metrics of a SystemStatePacket and the bounded `extra_metrics` list it
 * shares with FieldReport (spec 01 rule 3). Tolaria builds with {@link buildTrainingMetrics};
 * Tamiyo reads with {@link readTrainingMetrics}; both run the same checks (the rules:
 * docs/architecture.md, Core, "Typed contract helpers").
 */
import { create } from '@bufbuild/protobuf';
import {
  OptimizerFamily,
  OptimizerFamilySchema,
  TrainingMetricsSchema,
  type MetricPoint,
  type SystemStatePacket,
  type TrainingMetrics,
} from '../leyline/index.js';
import { ContractChecker } from './contract-checks.js';
import { ErrorCode, EsperError } from './errors.js';
import { CONTRACT_LIMITS } from './limits.js';
import { buildMetric, type MetricInput } from './telemetry.js';

/** Most entries an `extra_metrics` list may hold (TrainingMetrics and FieldReport). */
export const MAX_EXTRA_METRICS = CONTRACT_LIMITS.extraMetricsMaxEntries;

type FloatRule = 'finite' | 'nonNegative' | 'percent';

interface FloatField {
  /** Key on the generated message. */
  readonly key: keyof TrainingMetrics;
  /** Proto field name, used in errors and as a reserved extra-metric name. */
  readonly field: string;
  readonly rule: FloatRule;
}

/** The float fields of TrainingMetrics, in field-number order. */
const FLOAT_FIELDS = [
  { key: 'optimizerLr', field: 'optimizer_lr', rule: 'nonNegative' },
  { key: 'optimizerMomentum', field: 'optimizer_momentum', rule: 'nonNegative' },
  { key: 'lossDelta', field: 'loss_delta', rule: 'finite' },
  { key: 'lossEwma', field: 'loss_ewma', rule: 'finite' },
  { key: 'lossVolatility', field: 'loss_volatility', rule: 'nonNegative' },
  { key: 'gradNormEwma', field: 'grad_norm_ewma', rule: 'nonNegative' },
  { key: 'gradConflictRate', field: 'grad_conflict_rate', rule: 'nonNegative' },
  { key: 'tamiyoLatencyMs', field: 'tamiyo_latency_ms', rule: 'nonNegative' },
  { key: 'kasminaApplyMs', field: 'kasmina_apply_ms', rule: 'nonNegative' },
  { key: 'kasminaFinalizeMs', field: 'kasmina_finalize_ms', rule: 'nonNegative' },
  { key: 'stepLatencyMs', field: 'step_latency_ms', rule: 'nonNegative' },
  { key: 'gpuMemUsedGb', field: 'gpu_mem_used_gb', rule: 'nonNegative' },
  { key: 'gpuMemFreeGb', field: 'gpu_mem_free_gb', rule: 'nonNegative' },
  { key: 'gpuUtilPercent', field: 'gpu_util_percent', rule: 'percent' },
  { key: 'cpuUtilPercent', field: 'cpu_util_percent', rule: 'nonNegative' },
  { key: 'samplesPerS', field: 'samples_per_s', rule: 'nonNegative' },
  { key: 'hookLatencyMs', field: 'hook_latency_ms', rule: 'nonNegative' },
  { key: 'inputWaitMs', field: 'input_wait_ms', rule: 'nonNegative' },
  { key: 'gradVar', field: 'grad_var', rule: 'nonNegative' },
  { key: 'gradientNorm', field: 'gradient_norm', rule: 'nonNegative' },
  { key: 'h2dCopyMs', field: 'h2d_copy_ms', rule: 'nonNegative' },
] as const satisfies readonly FloatField[];

type FloatKey = (typeof FLOAT_FIELDS)[number]['key'];
type ScalarKey = FloatKey | 'optimizerFamily' | 'epochsTotal' | 'epochsPlanned';

// Compile-time guard: a scalar added to TrainingMetrics in the proto must be added above.
type UncoveredKey = Exclude<keyof TrainingMetrics, ScalarKey | 'extraMetrics' | '$typeName' | '$unknown'>;
const _everyFieldCovered: [UncoveredKey] extends [never] ? true : UncoveredKey = true;

/** Typed field names that extra metrics may not reuse. */
const RESERVED_EXTRA_NAMES: ReadonlySet<string> = new Set([
  ...FLOAT_FIELDS.map((f) => f.field),
  'optimizer_family',
  'epochs_total',
  'epochs_planned',
]);

const FIELD = 'metrics';

/**
 * Inputs of {@link buildTrainingMetrics}: any subset of the typed fields (an omitted field
 * is 0, the proto default) plus the long-tail `extraMetrics`.
 */
export type TrainingMetricsInput = Partial<Readonly<Pick<TrainingMetrics, ScalarKey>>> & {
  /**
   * Long-tail instrumentation; at most {@link MAX_EXTRA_METRICS}, order preserved.
   * @default []
   */
  readonly extraMetrics?: readonly MetricInput[];
};

/**
 * Builds TrainingMetrics (producer side). Floats are rounded to float32, the precision the
 * wire carries; extra metrics are built with `buildMetric`, order preserved.
 *
 * @throws EsperError CONTRACT_BOUND_EXCEEDED for more than {@link MAX_EXTRA_METRICS} extra
 *   metrics, INVALID_ARGUMENT for any other violation; `details.field` names the field.
 */
export function buildTrainingMetrics(input: TrainingMetricsInput): TrainingMetrics {
  const check = new ContractChecker('producer');
  const scalars: Partial<Record<FloatKey, number>> = {};
  for (const { key, field } of FLOAT_FIELDS) {
    scalars[key] = check.float32(`${FIELD}.${field}`, input[key] ?? 0);
  }
  const metrics = create(TrainingMetricsSchema, {
    ...scalars,
    optimizerFamily: input.optimizerFamily ?? OptimizerFamily.UNSPECIFIED,
    epochsTotal: check.uint32(`${FIELD}.epochs_total`, input.epochsTotal ?? 0),
    epochsPlanned: check.uint32(`${FIELD}.epochs_planned`, input.epochsPlanned ?? 0),
    extraMetrics: buildExtraMetricsWith(input.extraMetrics ?? [], `${FIELD}.extra_metrics`, check),
  });
  validateTrainingMetrics(metrics, check);
  return metrics;
}

/**
 * Reads and validates a packet's TrainingMetrics (consumer side).
 *
 * @throws EsperError CONTRACT_FIELD_MISSING when the packet has no metrics or an extra
 *   metric lacks a name or unit, CONTRACT_BOUND_EXCEEDED for more than
 *   {@link MAX_EXTRA_METRICS} extra metrics, INVALID_ARGUMENT for any other violation.
 */
export function readTrainingMetrics(packet: SystemStatePacket): TrainingMetrics {
  const metrics = packet.metrics;
  if (metrics === undefined) {
    throw new EsperError(
      ErrorCode.CONTRACT_FIELD_MISSING,
      `system state packet ${JSON.stringify(packet.packetId)} carries no training metrics`,
      { details: { field: FIELD, packetId: packet.packetId } },
    );
  }
  validateTrainingMetrics(metrics, new ContractChecker('consumer'));
  return metrics;
}

/**
 * Builds a bounded `extra_metrics` list (producer side), e.g. for
 * `FieldReport.extra_metrics`. `field` names the list in errors
 * (`"field_report.extra_metrics"`).
 *
 * @throws EsperError CONTRACT_BOUND_EXCEEDED for more than {@link MAX_EXTRA_METRICS}
 *   entries, INVALID_ARGUMENT for a blank or duplicate name, a missing unit or a
 *   non-finite value.
 */
export function buildExtraMetrics(inputs: readonly MetricInput[], field: string): MetricPoint[] {
  return buildExtraMetricsWith(inputs, field, new ContractChecker('producer'));
}

/**
 * Validates a received `extra_metrics` list (consumer side), e.g.
 * `FieldReport.extra_metrics`: at most {@link MAX_EXTRA_METRICS} entries, names non-blank
 * and unique, units non-blank, values finite. `field` names the list in errors.
 *
 * @throws EsperError CONTRACT_BOUND_EXCEEDED, CONTRACT_FIELD_MISSING (blank name or unit)
 *   or INVALID_ARGUMENT.
 */
export function validateExtraMetrics(list: readonly MetricPoint[], field: string): void {
  checkExtraMetrics(list, field, new ContractChecker('consumer'), new Set());
}

function buildExtraMetricsWith(inputs: readonly MetricInput[], field: string, check: ContractChecker): MetricPoint[] {
  // Bound first: an oversized list fails whole, before any entry is built.
  check.listBound(field, inputs.length, MAX_EXTRA_METRICS);
  const points = inputs.map((input, i) => {
    const at = `${field}[${i}]`;
    check.text(`${at}.name`, input.name, true);
    check.text(`${at}.unit`, input.unit, true);
    check.finite(`${at}.value`, input.value);
    return buildMetric(input);
  });
  checkExtraMetrics(points, field, check, new Set());
  return points;
}

function checkExtraMetrics(list: readonly MetricPoint[], field: string, check: ContractChecker, reservedNames: ReadonlySet<string>): void {
  check.listBound(field, list.length, MAX_EXTRA_METRICS);
  const seen = new Set<string>();
  list.forEach((point, i) => {
    const at = `${field}[${i}]`;
    check.text(`${at}.name`, point.name, true);
    check.text(`${at}.unit`, point.unit, true);
    check.finite(`${at}.value`, point.value);
    if (seen.has(point.name)) {
      check.invalid(`${at}.name`, `duplicate metric name ${JSON.stringify(point.name)}`);
    }
    if (reservedNames.has(point.name)) {
      check.invalid(`${at}.name`, `${JSON.stringify(point.name)} has a typed field; set the field instead`);
    }
    seen.add(point.name);
  });
}

function validateTrainingMetrics(metrics: TrainingMetrics, check: ContractChecker): void {
  for (const { key, field, rule } of FLOAT_FIELDS) {
    const at = `${FIELD}.${field}`;
    const value = metrics[key];
    switch (rule) {
      case 'finite':
        check.finite(at, value);
        break;
      case 'nonNegative':
        check.nonNegative(at, value);
        break;
      case 'percent':
        check.range(at, value, 0, 100);
        break;
    }
  }
  check.enumValue(`${FIELD}.optimizer_family`, OptimizerFamilySchema, metrics.optimizerFamily, true);
  check.uint32(`${FIELD}.epochs_total`, metrics.epochsTotal);
  check.uint32(`${FIELD}.epochs_planned`, metrics.epochsPlanned);
  checkExtraMetrics(metrics.extraMetrics, `${FIELD}.extra_metrics`, check, RESERVED_EXTRA_NAMES);
}
