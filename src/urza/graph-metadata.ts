/**
 * Graph metadata of a compiled blueprint, as Urza stores it for Tamiyo's graph builder
 * (reference prototype-blueprint-pipeline §3.4, §5). Layers are the artifact header's
 * variables in header order; every family builder creates its variables in the order its
 * forward pass first uses them, so consecutive layers form the adjacency chain `0→1→…`
 * (for branching families the order of use, not the exact dataflow — never less than the
 * prototype's chain fallback). Monitors start from the crucible's thresholds and are
 * tightened by a sheet's hazard band; a HIGH or CRITICAL band restricts blending to CONVEX.
 */
import { create } from '@bufbuild/protobuf';
import { z } from 'zod';
import { ErrorCode, EsperError, parsePersistedJson } from '../core/index.js';
import { BlendMode, HazardBand, SeedSiteDescriptorSchema, SeedSiteKind, type BlueprintDescriptor, type BSDS } from '../leyline/index.js';
import { familyById, type FamilyId } from '../karn/index.js';
import { siteOfArtifact, type ArtifactHeader } from '../tezzeret/index.js';

/** Version of the {@link GraphMetadata} layout. */
export const GRAPH_METADATA_VERSION = 1;

/** One layer: a variable of the compiled module. */
export interface GraphLayer {
  /** `<blueprintId>-L<index>`. */
  readonly layerId: string;
  /** Position in the header's variable order. */
  readonly index: number;
  /** Variable name relative to the module scope (e.g. `expert0/w1`). */
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: string;
  /** Product of the dims. */
  readonly parameterCount: number;
}

/** A nonlinearity of the family. */
export interface GraphActivation {
  /** `<blueprintId>-A<index>`. */
  readonly activationId: string;
  /** `relu`, `gelu`, `sigmoid`, `tanh`, `softmax`, `normalise` or `linear`. */
  readonly kind: string;
}

/** One tunable parameter of the descriptor, with its compiled value. */
export interface GraphParameter {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly span: number;
  /** Value the artifact was compiled with, when the header records one. */
  readonly value?: number;
}

/** Parameter totals and the descriptor's parameters. */
export interface GraphParameters {
  /** Σ of the layers' parameter counts. */
  readonly count: number;
  /** Bytes of the variables (4 per float32/int32 element, 1 per bool). */
  readonly bytes: number;
  readonly allowed: readonly GraphParameter[];
}

/** Where the blueprint fits and how it may be blended. */
export interface GraphCapabilities {
  /** Site the artifact was compiled for. */
  readonly compiledSite: { readonly kind: string; readonly shape: readonly number[] };
  /** Site kinds (`DENSE`, `CONV`) the family fits at the compiled width. */
  readonly siteKinds: readonly string[];
  /** Guard input and output shapes (batch axis first). */
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  /** Blend-mode names (`CONVEX`, `RESIDUAL`, `CHANNEL`, `CONFIDENCE`). */
  readonly allowedBlendModes: readonly string[];
}

/** A signal to watch while the blueprint is grafted. */
export interface GraphMonitor {
  readonly metric: 'gradient_norm' | 'output_scale' | 'latency_ms';
  /** Alert when the signal goes above this value. */
  readonly threshold: number;
  /** `bsds` when tightened by a BSDS hazard band, else `default`. */
  readonly source: 'bsds' | 'default';
  /** Hazard band name of the BSDS, when `source` is `bsds`. */
  readonly hazardBand?: string;
}

/** Graph metadata of one compiled blueprint (stored by Urza, read by Tamiyo). */
export interface GraphMetadata {
  readonly version: number;
  readonly blueprintId: string;
  readonly family: string;
  readonly layers: readonly GraphLayer[];
  readonly activations: readonly GraphActivation[];
  readonly parameters: GraphParameters;
  readonly capabilities: GraphCapabilities;
  /** Ordered `[from, to]` layer-index edges (see the file comment for the derivation). */
  readonly adjacency: readonly (readonly [number, number])[];
  readonly monitors: readonly GraphMonitor[];
  /** Always `tezzeret`: built from the compiled artifact. */
  readonly source: 'tezzeret';
}

/** Options of {@link buildGraphMetadata}. */
export interface GraphMetadataOptions {
  /** The blueprint's BSDS: tightens monitors and restricts blend modes. @default none */
  readonly bsds?: BSDS;
}

/**
 * Monitor thresholds without a BSDS: the crucible's probe thresholds (gradient-norm sum
 * 1e3, output/input ratio 100, forward latency 250 ms).
 */
export const GRAPH_MONITOR_DEFAULTS = { gradientNorm: 1e3, outputScale: 100, latencyMs: 250 } as const;

/** Factor applied to every monitor threshold per BSDS hazard band. */
export const MONITOR_BAND_FACTORS: Readonly<Record<HazardBand, number>> = {
  [HazardBand.UNSPECIFIED]: 1,
  [HazardBand.LOW]: 1,
  [HazardBand.MEDIUM]: 0.5,
  [HazardBand.HIGH]: 0.25,
  [HazardBand.CRITICAL]: 0.1,
};

const FAMILY_ACTIVATIONS: Readonly<Record<FamilyId, readonly string[]>> = {
  zero_control: ['linear'],
  low_rank_adapter: ['linear'],
  norm_affine: ['normalise'],
  bottleneck_mlp: ['gelu'],
  residual_mlp: ['relu'],
  depthwise_separable: ['relu'],
  mixture_of_experts: ['softmax', 'relu'],
  gated_linear_unit: ['sigmoid'],
  conv3x3_block: ['relu'],
  highway_gate: ['sigmoid', 'tanh'],
  squeeze_excite: ['relu', 'sigmoid'],
  self_attention: ['softmax'],
  unstable_feedback: ['linear'],
  widen: ['relu'],
  // The host block's activation (ReLU in Tolaria's CNN hosts; the site descriptor says which).
  widen_conv: ['relu'],
};

/**
 * Builds the graph metadata of `descriptor`'s artifact from its decoded `header` (see the
 * file comment). Throws `INVALID_ARGUMENT` when the header is of another blueprint.
 */
export function buildGraphMetadata(
  descriptor: BlueprintDescriptor,
  header: ArtifactHeader,
  options: GraphMetadataOptions = {},
): GraphMetadata {
  const id = descriptor.blueprintId;
  if (header.blueprintId !== id) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `artifact header is for ${header.blueprintId}, descriptor is ${id}`, {
      details: { blueprintId: id },
    });
  }
  const layers: GraphLayer[] = header.variables.map((v, index) => ({
    layerId: `${id}-L${index}`,
    index,
    name: v.name,
    shape: [...v.shape],
    dtype: v.dtype,
    parameterCount: v.shape.reduce((a, b) => a * b, 1),
  }));
  const activations = (FAMILY_ACTIVATIONS[header.family] ?? ['unknown']).map((kind, i) => ({ activationId: `${id}-A${i}`, kind }));
  const count = layers.reduce((sum, layer) => sum + layer.parameterCount, 0);
  const bytes = layers.reduce((sum, layer) => sum + layer.parameterCount * (layer.dtype === 'bool' ? 1 : 4), 0);
  const allowed = descriptor.allowedParameters.map((p) => {
    const value = header.parameters[p.name];
    const entry = { name: p.name, min: p.minValue, max: p.maxValue, span: p.maxValue - p.minValue };
    return value === undefined ? entry : { ...entry, value };
  });
  const adjacency: [number, number][] = [];
  for (let i = 1; i < layers.length; i += 1) adjacency.push([i - 1, i]);
  const bsds = options.bsds;
  if (bsds !== undefined && bsds.blueprintId !== id) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `BSDS is for ${bsds.blueprintId}, descriptor is ${id}`, {
      details: { blueprintId: id },
    });
  }
  return {
    version: GRAPH_METADATA_VERSION,
    blueprintId: id,
    family: header.family,
    layers,
    activations,
    parameters: { count, bytes, allowed },
    capabilities: capabilitiesOf(header, bsds),
    adjacency,
    monitors: monitorsFor(bsds),
    source: 'tezzeret',
  };
}

function capabilitiesOf(header: ArtifactHeader, bsds: BSDS | undefined): GraphCapabilities {
  const channels = header.site.shape[header.site.shape.length - 1] ?? 1;
  const family = familyById(header.family);
  // Probe the family's fit predicate at the compiled width for each site kind (WIDEN: the
  // compiled site's shapes and conv path).
  const widenProbe = siteOfArtifact(header.site, 'probe');
  widenProbe.kind = SeedSiteKind.WIDEN;
  widenProbe.outputShape = [...(header.site.outputShape ?? [channels])];
  const probes = [
    { name: 'DENSE', site: create(SeedSiteDescriptorSchema, { kind: SeedSiteKind.DENSE, shape: [channels] }) },
    { name: 'CONV', site: create(SeedSiteDescriptorSchema, { kind: SeedSiteKind.CONV, shape: [4, 4, channels] }) },
    { name: 'WIDEN', site: widenProbe },
  ];
  const siteKinds = family === undefined ? [] : probes.filter((p) => family.fits(p.site)).map((p) => p.name);
  const sameShape =
    header.guard.inputShape.length === header.guard.outputShape.length &&
    header.guard.inputShape.every((d, i) => d === header.guard.outputShape[i]);
  const hazardous = bsds !== undefined && (bsds.hazardBand === HazardBand.HIGH || bsds.hazardBand === HazardBand.CRITICAL);
  // A WIDEN seed adds to the next layer's pre-activation: residual blending only.
  const widen = header.site.kind === 'WIDEN';
  const modes: BlendMode[] = widen ? [BlendMode.RESIDUAL] : [BlendMode.CONVEX];
  if (!hazardous && !widen) {
    if (sameShape) modes.push(BlendMode.RESIDUAL, BlendMode.CHANNEL);
    modes.push(BlendMode.CONFIDENCE);
  }
  return {
    compiledSite: { kind: header.site.kind, shape: [...header.site.shape] },
    siteKinds,
    inputShape: [...header.guard.inputShape],
    outputShape: [...header.guard.outputShape],
    allowedBlendModes: modes.map((mode) => BlendMode[mode]),
  };
}

function monitorsFor(bsds: BSDS | undefined): GraphMonitor[] {
  const factor = bsds === undefined ? 1 : MONITOR_BAND_FACTORS[bsds.hazardBand];
  const tag = bsds === undefined ? { source: 'default' as const } : { source: 'bsds' as const, hazardBand: HazardBand[bsds.hazardBand] };
  return [
    { metric: 'gradient_norm', threshold: GRAPH_MONITOR_DEFAULTS.gradientNorm * factor, ...tag },
    { metric: 'output_scale', threshold: GRAPH_MONITOR_DEFAULTS.outputScale * factor, ...tag },
    { metric: 'latency_ms', threshold: GRAPH_MONITOR_DEFAULTS.latencyMs * factor, ...tag },
  ];
}

const dims = z.array(z.number().int().nonnegative());
const finite = z.number().refine(Number.isFinite, 'must be finite');
const count = z.number().int().nonnegative();

/** The stored layout of {@link GraphMetadata}, checked field by field on every read. */
const GraphMetadataSchema = z.strictObject({
  version: z.literal(GRAPH_METADATA_VERSION),
  blueprintId: z.string().min(1),
  family: z.string().min(1),
  layers: z.array(
    z.strictObject({
      layerId: z.string().min(1),
      index: count,
      name: z.string().min(1),
      shape: dims,
      dtype: z.string().min(1),
      parameterCount: count,
    }),
  ),
  activations: z.array(z.strictObject({ activationId: z.string().min(1), kind: z.string().min(1) })),
  parameters: z.strictObject({
    count,
    bytes: count,
    allowed: z.array(z.strictObject({ name: z.string().min(1), min: finite, max: finite, span: finite, value: finite.optional() })),
  }),
  capabilities: z.strictObject({
    compiledSite: z.strictObject({ kind: z.string().min(1), shape: dims }),
    siteKinds: z.array(z.string()),
    inputShape: dims,
    outputShape: dims,
    allowedBlendModes: z.array(z.enum(['CONVEX', 'RESIDUAL', 'CHANNEL', 'CONFIDENCE'])),
  }),
  adjacency: z.array(z.tuple([count, count])),
  monitors: z.array(
    z.strictObject({
      metric: z.enum(['gradient_norm', 'output_scale', 'latency_ms']),
      threshold: finite,
      source: z.enum(['bsds', 'default']),
      hazardBand: z.string().min(1).optional(),
    }),
  ),
  source: z.literal('tezzeret'),
});

/**
 * Parses stored graph metadata JSON against the current layout.
 * @throws PersistedStateError `DECODE_FAILED` naming every bad path when it is not JSON or
 *   not of this layout.
 */
export function parseGraphMetadata(json: string): GraphMetadata {
  return parsePersistedJson(GraphMetadataSchema, json, { code: ErrorCode.DECODE_FAILED, what: 'graph metadata' });
}
