/**
 * The 50 default blueprints BP001–BP050 (ids, names, tiers, stages, risks, flags, bounds and
 * descriptions as reference prototype-blueprint-pipeline §1.1 has them), each mapped to a
 * module family — the parameter → knob mapping:
 *
 * | ID | name | family | parameter → knobs (other knobs fixed as shown) |
 * |---|---|---|---|
 * | BP001 | identity_passthrough | zero_control | — |
 * | BP002 | linear_projection | low_rank_adapter | scale → alpha = 8·scale; rank 8 |
 * | BP003 | layer_norm_basic | norm_affine | epsilon → epsilon |
 * | BP004 | dropout_light | bottleneck_mlp | dropout → outputScale = 1 − dropout (dropout's inference-time scale); reduction 4 |
 * | BP005 | relu_activation | residual_mlp | —; depth 1, hiddenMultiple 1 |
 * | BP006 | batch_norm_1d | norm_affine | momentum → gain |
 * | BP007 | pooling_max | depthwise_separable | kernel → kernel (rounded, even → next odd) |
 * | BP008 | skip_connection | zero_control | — |
 * | BP009 | residual_block | residual_mlp | depth → depth; hiddenMultiple 2 |
 * | BP010 | concat_fusion | mixture_of_experts | branches → experts |
 * | BP011 | gelu_activation | gated_linear_unit | —; hiddenMultiple 1 |
 * | BP012 | layer_scaling | bottleneck_mlp | scale → outputScale; reduction 2 |
 * | BP013 | grouped_conv | conv3x3_block | groups → reduction (inner width c/groups) |
 * | BP014 | highway_gate | highway_gate | gate_bias → gateBias |
 * | BP015 | depthwise_separable | depthwise_separable | kernel → kernel |
 * | BP016 | squeeze_excitation | squeeze_excite | reduction → reduction |
 * | BP017 | channel_attention | squeeze_excite | heads → reduction = 16 / heads |
 * | BP018 | spatial_attention | depthwise_separable | radius → kernel = 2·radius + 1 |
 * | BP019 | cross_attention | self_attention | heads → heads; keyDim 8 |
 * | BP020 | attention_single_head | self_attention | sequence_length → keyDim = sequence_length / 16; heads 1 |
 * | BP021 | feedforward_gated | gated_linear_unit | hidden_multiple → hiddenMultiple |
 * | BP022 | multi_head_attention_4 | self_attention | heads → heads; keyDim 8 |
 * | BP023 | transformer_block | residual_mlp | layers → depth; hiddenMultiple 4 |
 * | BP024 | conv_transformer | depthwise_separable | kernel → kernel |
 * | BP025 | dynamic_conv | mixture_of_experts | experts → experts |
 * | BP026 | adaptive_pooling | squeeze_excite | output_size → reduction |
 * | BP027 | feature_pyramid | conv3x3_block | levels → layers = levels − 2 |
 * | BP028 | dense_connection | bottleneck_mlp | growth_rate → reduction = 64 / growth_rate |
 * | BP029 | multi_head_attention_8 | self_attention | heads → heads; keyDim 4 |
 * | BP030 | graph_attention | self_attention | hops → rounds; heads 2 |
 * | BP031 | temporal_conv | conv3x3_block | dilation → dilation |
 * | BP032 | dilated_conv | conv3x3_block | dilation → dilation; layers 2 |
 * | BP033 | deformable_conv | conv3x3_block | offset_groups → reduction |
 * | BP034 | non_local_block | self_attention | window → keyDim; heads 1 |
 * | BP035 | learned_positional | low_rank_adapter | frequency → alpha = 4·frequency; rank 4 |
 * | BP036 | mixture_of_experts_4 | mixture_of_experts | experts → experts, capacity → hiddenMultiple |
 * | BP037 | hierarchical_attention | self_attention | levels → rounds = levels − 1; heads 2 |
 * | BP038 | memory_augmented | low_rank_adapter | memory_slots → rank = alpha = memory_slots / 8 |
 * | BP039 | neural_ode_block | residual_mlp | steps → depth; hiddenMultiple 1 |
 * | BP040 | differentiable_nas | mixture_of_experts | temperature → temperature; experts 4 |
 * | BP041 | meta_learning_layer | gated_linear_unit | adapt_steps → hiddenMultiple |
 * | BP042 | recursive_processing | unstable_feedback | depth → steps; gain 0.5 (stable regime) |
 * | BP043 | exploding_gradient | unstable_feedback | scale → gain; steps 3 |
 * | BP044 | vanishing_gradient | unstable_feedback | decay → gain; steps 6 |
 * | BP045 | nan_injection | norm_affine | frequency → epsilon = 1e-6·frequency (near-zero ε); gain 2 |
 * | BP046 | infinite_loop | unstable_feedback | iterations → steps = iterations / 1000; gain 1.5 |
 * | BP047 | memory_leak | residual_mlp | growth_rate → hiddenMultiple = 4·growth_rate; depth 2 |
 * | BP048 | deadlock_pattern | mixture_of_experts | threads → experts; temperature 0.1 |
 * | BP049 | race_condition | low_rank_adapter | window_ns → alpha = window_ns / 10; rank 16 |
 * | BP050 | adversarial_noise | highway_gate | epsilon → transformScale = 25·epsilon; gateBias 3 |
 *
 * Integer knobs are rounded by the family (midpoint 2.5 → 3, halves round up).
 *
 * Growth blueprints, Esper's own (not in the prototype), SAFE, after the 50:
 *
 * | ID | name | family | parameter → knobs |
 * |---|---|---|---|
 * | BP051 | widen_zero_out | widen | units → units (new hidden units; midpoint 24), init 0 |
 * | BP052 | widen_gradmax | widen | units → units (midpoint 24), init 1 (GradMax: outgoing from the gradient) |
 * | BP053 | widen_gradmax_unit | widen | units 1 (bounds [1, 1]), init 1, bias 0 (GradMax's student–teacher grower) |
 * | BP054 | widen_random_unit | widen | units 1 (bounds [1, 1]), init 2, bias 0 (GradMax's random baseline) |
 * | BP055 | widen_random | widen | units → units (midpoint 24), init 2 (random outgoing rows, incoming zero) |
 * | BP056 | widen_conv_zero_out | widen_conv | channels → channels (new output channels of a conv block; midpoint 8) |
 */
import { create } from '@bufbuild/protobuf';
import { BlueprintDescriptorSchema, BlueprintParameterSchema, BlueprintTier, type BlueprintDescriptor } from '../leyline/index.js';
import { WidenInit } from './families/widen.js';
import { FamilyId, type Knobs } from './family.js';

/** Parameter values of a blueprint, by parameter name. */
export type BlueprintParameters = Readonly<Record<string, number>>;

/** A default blueprint: its descriptor and how its parameters become family knobs. */
export interface BlueprintEntry {
  readonly descriptor: BlueprintDescriptor;
  /** Maps validated blueprint parameters to the family's knobs. */
  readonly toKnobs: (params: BlueprintParameters) => Knobs;
}

interface EntrySpec {
  readonly id: string;
  readonly name: string;
  readonly stage: number;
  readonly risk: number;
  readonly description: string;
  readonly bounds: Readonly<Record<string, readonly [number, number]>>;
  readonly family: FamilyId;
  readonly toKnobs: (p: BlueprintParameters) => Knobs;
}

const p = (params: BlueprintParameters, name: string): number => params[name] ?? Number.NaN;

const SAFE: readonly EntrySpec[] = [
  {
    id: 'BP001',
    name: 'identity_passthrough',
    stage: 0,
    risk: 0.0,
    description: 'Identity pass-through block',
    bounds: {},
    family: FamilyId.ZERO_CONTROL,
    toKnobs: () => ({}),
  },
  {
    id: 'BP002',
    name: 'linear_projection',
    stage: 0,
    risk: 0.1,
    description: 'Linear projection layer',
    bounds: { scale: [0.5, 2.0] },
    family: FamilyId.LOW_RANK_ADAPTER,
    toKnobs: (q) => ({ rank: 8, alpha: 8 * p(q, 'scale') }),
  },
  {
    id: 'BP003',
    name: 'layer_norm_basic',
    stage: 0,
    risk: 0.1,
    description: 'Layer normalization',
    bounds: { epsilon: [1e-6, 1e-3] },
    family: FamilyId.NORM_AFFINE,
    toKnobs: (q) => ({ epsilon: p(q, 'epsilon') }),
  },
  {
    id: 'BP004',
    name: 'dropout_light',
    stage: 0,
    risk: 0.2,
    description: 'Lightweight dropout',
    bounds: { dropout: [0.0, 0.4] },
    family: FamilyId.BOTTLENECK_MLP,
    toKnobs: (q) => ({ reduction: 4, outputScale: 1 - p(q, 'dropout') }),
  },
  {
    id: 'BP005',
    name: 'relu_activation',
    stage: 0,
    risk: 0.1,
    description: 'ReLU activation',
    bounds: {},
    family: FamilyId.RESIDUAL_MLP,
    toKnobs: () => ({ depth: 1, hiddenMultiple: 1 }),
  },
  {
    id: 'BP006',
    name: 'batch_norm_1d',
    stage: 0,
    risk: 0.2,
    description: '1D batch normalization',
    bounds: { momentum: [0.5, 0.99] },
    family: FamilyId.NORM_AFFINE,
    toKnobs: (q) => ({ gain: p(q, 'momentum') }),
  },
  {
    id: 'BP007',
    name: 'pooling_max',
    stage: 0,
    risk: 0.2,
    description: 'Max pooling block',
    bounds: { kernel: [2, 5] },
    family: FamilyId.DEPTHWISE_SEPARABLE,
    toKnobs: (q) => ({ kernel: p(q, 'kernel') }),
  },
  {
    id: 'BP008',
    name: 'skip_connection',
    stage: 1,
    risk: 0.2,
    description: 'Skip connection',
    bounds: {},
    family: FamilyId.ZERO_CONTROL,
    toKnobs: () => ({}),
  },
  {
    id: 'BP009',
    name: 'residual_block',
    stage: 1,
    risk: 0.3,
    description: 'Residual block',
    bounds: { depth: [1, 4] },
    family: FamilyId.RESIDUAL_MLP,
    toKnobs: (q) => ({ depth: p(q, 'depth'), hiddenMultiple: 2 }),
  },
  {
    id: 'BP010',
    name: 'concat_fusion',
    stage: 1,
    risk: 0.3,
    description: 'Concatenation fusion block',
    bounds: { branches: [2, 4] },
    family: FamilyId.MIXTURE_OF_EXPERTS,
    toKnobs: (q) => ({ experts: p(q, 'branches') }),
  },
  {
    id: 'BP011',
    name: 'gelu_activation',
    stage: 1,
    risk: 0.2,
    description: 'GELU activation',
    bounds: {},
    family: FamilyId.GATED_LINEAR_UNIT,
    toKnobs: () => ({ hiddenMultiple: 1 }),
  },
  {
    id: 'BP012',
    name: 'layer_scaling',
    stage: 1,
    risk: 0.3,
    description: 'Layer scaling block',
    bounds: { scale: [0.8, 1.2] },
    family: FamilyId.BOTTLENECK_MLP,
    toKnobs: (q) => ({ reduction: 2, outputScale: p(q, 'scale') }),
  },
  {
    id: 'BP013',
    name: 'grouped_conv',
    stage: 1,
    risk: 0.4,
    description: 'Grouped convolution',
    bounds: { groups: [2, 8] },
    family: FamilyId.CONV3X3_BLOCK,
    toKnobs: (q) => ({ reduction: p(q, 'groups') }),
  },
  {
    id: 'BP014',
    name: 'highway_gate',
    stage: 1,
    risk: 0.4,
    description: 'Highway gating block',
    bounds: { gate_bias: [-3, 3] },
    family: FamilyId.HIGHWAY_GATE,
    toKnobs: (q) => ({ gateBias: p(q, 'gate_bias') }),
  },
  {
    id: 'BP015',
    name: 'depthwise_separable',
    stage: 2,
    risk: 0.4,
    description: 'Depthwise separable convolution',
    bounds: { kernel: [3, 7] },
    family: FamilyId.DEPTHWISE_SEPARABLE,
    toKnobs: (q) => ({ kernel: p(q, 'kernel') }),
  },
  {
    id: 'BP016',
    name: 'squeeze_excitation',
    stage: 2,
    risk: 0.4,
    description: 'Squeeze-and-Excitation block',
    bounds: { reduction: [4, 16] },
    family: FamilyId.SQUEEZE_EXCITE,
    toKnobs: (q) => ({ reduction: p(q, 'reduction') }),
  },
  {
    id: 'BP017',
    name: 'channel_attention',
    stage: 2,
    risk: 0.4,
    description: 'Channel attention block',
    bounds: { heads: [1, 4] },
    family: FamilyId.SQUEEZE_EXCITE,
    toKnobs: (q) => ({ reduction: 16 / p(q, 'heads') }),
  },
  {
    id: 'BP018',
    name: 'spatial_attention',
    stage: 2,
    risk: 0.4,
    description: 'Spatial attention block',
    bounds: { radius: [1, 3] },
    family: FamilyId.DEPTHWISE_SEPARABLE,
    toKnobs: (q) => ({ kernel: 2 * Math.round(p(q, 'radius')) + 1 }),
  },
  {
    id: 'BP019',
    name: 'cross_attention',
    stage: 2,
    risk: 0.5,
    description: 'Cross-attention module',
    bounds: { heads: [2, 4] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: p(q, 'heads'), keyDim: 8 }),
  },
  {
    id: 'BP020',
    name: 'attention_single_head',
    stage: 2,
    risk: 0.5,
    description: 'Single-head attention',
    bounds: { sequence_length: [16, 256] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: 1, keyDim: p(q, 'sequence_length') / 16 }),
  },
  {
    id: 'BP021',
    name: 'feedforward_gated',
    stage: 2,
    risk: 0.5,
    description: 'Gated feed-forward block',
    bounds: { hidden_multiple: [2, 6] },
    family: FamilyId.GATED_LINEAR_UNIT,
    toKnobs: (q) => ({ hiddenMultiple: p(q, 'hidden_multiple') }),
  },
  {
    id: 'BP022',
    name: 'multi_head_attention_4',
    stage: 3,
    risk: 0.5,
    description: 'Multi-head attention (4 heads)',
    bounds: { heads: [4, 6] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: p(q, 'heads'), keyDim: 8 }),
  },
  {
    id: 'BP023',
    name: 'transformer_block',
    stage: 3,
    risk: 0.5,
    description: 'Transformer encoder block',
    bounds: { layers: [1, 6] },
    family: FamilyId.RESIDUAL_MLP,
    toKnobs: (q) => ({ depth: p(q, 'layers'), hiddenMultiple: 4 }),
  },
  {
    id: 'BP024',
    name: 'conv_transformer',
    stage: 3,
    risk: 0.5,
    description: 'Hybrid conv-transformer block',
    bounds: { kernel: [3, 11] },
    family: FamilyId.DEPTHWISE_SEPARABLE,
    toKnobs: (q) => ({ kernel: p(q, 'kernel') }),
  },
  {
    id: 'BP025',
    name: 'dynamic_conv',
    stage: 3,
    risk: 0.5,
    description: 'Dynamic convolution module',
    bounds: { experts: [2, 8] },
    family: FamilyId.MIXTURE_OF_EXPERTS,
    toKnobs: (q) => ({ experts: p(q, 'experts') }),
  },
  {
    id: 'BP026',
    name: 'adaptive_pooling',
    stage: 3,
    risk: 0.5,
    description: 'Adaptive pooling head',
    bounds: { output_size: [4, 16] },
    family: FamilyId.SQUEEZE_EXCITE,
    toKnobs: (q) => ({ reduction: p(q, 'output_size') }),
  },
  {
    id: 'BP027',
    name: 'feature_pyramid',
    stage: 3,
    risk: 0.5,
    description: 'Feature pyramid fusion',
    bounds: { levels: [3, 5] },
    family: FamilyId.CONV3X3_BLOCK,
    toKnobs: (q) => ({ layers: p(q, 'levels') - 2 }),
  },
  {
    id: 'BP028',
    name: 'dense_connection',
    stage: 3,
    risk: 0.5,
    description: 'Dense connection block',
    bounds: { growth_rate: [8, 48] },
    family: FamilyId.BOTTLENECK_MLP,
    toKnobs: (q) => ({ reduction: 64 / p(q, 'growth_rate') }),
  },
  {
    id: 'BP029',
    name: 'multi_head_attention_8',
    stage: 4,
    risk: 0.5,
    description: 'Multi-head attention (8 heads)',
    bounds: { heads: [8, 10] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: p(q, 'heads'), keyDim: 4 }),
  },
  {
    id: 'BP030',
    name: 'graph_attention',
    stage: 4,
    risk: 0.5,
    description: 'Graph attention layer',
    bounds: { hops: [1, 3] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: 2, rounds: p(q, 'hops') }),
  },
  {
    id: 'BP031',
    name: 'temporal_conv',
    stage: 4,
    risk: 0.5,
    description: 'Temporal convolution',
    bounds: { dilation: [1, 5] },
    family: FamilyId.CONV3X3_BLOCK,
    toKnobs: (q) => ({ dilation: p(q, 'dilation') }),
  },
  {
    id: 'BP032',
    name: 'dilated_conv',
    stage: 4,
    risk: 0.5,
    description: 'Dilated convolution stack',
    bounds: { dilation: [1, 8] },
    family: FamilyId.CONV3X3_BLOCK,
    toKnobs: (q) => ({ dilation: p(q, 'dilation'), layers: 2 }),
  },
  {
    id: 'BP033',
    name: 'deformable_conv',
    stage: 4,
    risk: 0.5,
    description: 'Deformable convolution',
    bounds: { offset_groups: [1, 4] },
    family: FamilyId.CONV3X3_BLOCK,
    toKnobs: (q) => ({ reduction: p(q, 'offset_groups') }),
  },
  {
    id: 'BP034',
    name: 'non_local_block',
    stage: 4,
    risk: 0.5,
    description: 'Non-local attention block',
    bounds: { window: [4, 16] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: 1, keyDim: p(q, 'window') }),
  },
  {
    id: 'BP035',
    name: 'learned_positional',
    stage: 4,
    risk: 0.5,
    description: 'Learned positional encoding',
    bounds: { frequency: [0.1, 1.0] },
    family: FamilyId.LOW_RANK_ADAPTER,
    toKnobs: (q) => ({ rank: 4, alpha: 4 * p(q, 'frequency') }),
  },
];

const EXPERIMENTAL: readonly EntrySpec[] = [
  {
    id: 'BP036',
    name: 'mixture_of_experts_4',
    stage: 5,
    risk: 0.7,
    description: 'Mixture-of-Experts block (4 experts)',
    bounds: { experts: [4, 8], capacity: [1, 2] },
    family: FamilyId.MIXTURE_OF_EXPERTS,
    toKnobs: (q) => ({ experts: p(q, 'experts'), hiddenMultiple: p(q, 'capacity') }),
  },
  {
    id: 'BP037',
    name: 'hierarchical_attention',
    stage: 5,
    risk: 0.7,
    description: 'Hierarchical attention module',
    bounds: { levels: [2, 4] },
    family: FamilyId.SELF_ATTENTION,
    toKnobs: (q) => ({ heads: 2, rounds: p(q, 'levels') - 1 }),
  },
  {
    id: 'BP038',
    name: 'memory_augmented',
    stage: 5,
    risk: 0.8,
    description: 'Memory-augmented block',
    bounds: { memory_slots: [32, 128] },
    family: FamilyId.LOW_RANK_ADAPTER,
    toKnobs: (q) => ({ rank: p(q, 'memory_slots') / 8, alpha: p(q, 'memory_slots') / 8 }),
  },
  {
    id: 'BP039',
    name: 'neural_ode_block',
    stage: 5,
    risk: 0.8,
    description: 'Neural ODE integration block',
    bounds: { steps: [1, 10] },
    family: FamilyId.RESIDUAL_MLP,
    toKnobs: (q) => ({ depth: p(q, 'steps'), hiddenMultiple: 1 }),
  },
  {
    id: 'BP040',
    name: 'differentiable_nas',
    stage: 5,
    risk: 0.8,
    description: 'Differentiable NAS head',
    bounds: { temperature: [0.5, 2.0] },
    family: FamilyId.MIXTURE_OF_EXPERTS,
    toKnobs: (q) => ({ experts: 4, temperature: p(q, 'temperature') }),
  },
  {
    id: 'BP041',
    name: 'meta_learning_layer',
    stage: 5,
    risk: 0.8,
    description: 'Meta-learning adaptation layer',
    bounds: { adapt_steps: [1, 5] },
    family: FamilyId.GATED_LINEAR_UNIT,
    toKnobs: (q) => ({ hiddenMultiple: p(q, 'adapt_steps') }),
  },
  {
    id: 'BP042',
    name: 'recursive_processing',
    stage: 5,
    risk: 0.8,
    description: 'Recursive processing block',
    bounds: { depth: [2, 6] },
    family: FamilyId.UNSTABLE_FEEDBACK,
    toKnobs: (q) => ({ steps: p(q, 'depth'), gain: 0.5 }),
  },
];

const HIGH_RISK: readonly EntrySpec[] = [
  {
    id: 'BP043',
    name: 'exploding_gradient',
    stage: 6,
    risk: 0.9,
    description: 'Exploding gradient stressor',
    bounds: { scale: [5, 20] },
    family: FamilyId.UNSTABLE_FEEDBACK,
    toKnobs: (q) => ({ gain: p(q, 'scale'), steps: 3 }),
  },
  {
    id: 'BP044',
    name: 'vanishing_gradient',
    stage: 6,
    risk: 0.9,
    description: 'Vanishing gradient stressor',
    bounds: { decay: [0.0, 0.1] },
    family: FamilyId.UNSTABLE_FEEDBACK,
    toKnobs: (q) => ({ gain: p(q, 'decay'), steps: 6 }),
  },
  {
    id: 'BP045',
    name: 'nan_injection',
    stage: 6,
    risk: 1.0,
    description: 'NaN injection adversarial template',
    bounds: { frequency: [0.01, 0.1] },
    family: FamilyId.NORM_AFFINE,
    toKnobs: (q) => ({ epsilon: 1e-6 * p(q, 'frequency'), gain: 2 }),
  },
  {
    id: 'BP046',
    name: 'infinite_loop',
    stage: 6,
    risk: 1.0,
    description: 'Infinite loop adversarial template',
    bounds: { iterations: [1000, 10000] },
    family: FamilyId.UNSTABLE_FEEDBACK,
    toKnobs: (q) => ({ steps: p(q, 'iterations') / 1000, gain: 1.5 }),
  },
  {
    id: 'BP047',
    name: 'memory_leak',
    stage: 6,
    risk: 1.0,
    description: 'Memory leak simulation',
    bounds: { growth_rate: [1, 5] },
    family: FamilyId.RESIDUAL_MLP,
    toKnobs: (q) => ({ depth: 2, hiddenMultiple: 4 * p(q, 'growth_rate') }),
  },
  {
    id: 'BP048',
    name: 'deadlock_pattern',
    stage: 6,
    risk: 1.0,
    description: 'Deadlock pattern stressor',
    bounds: { threads: [2, 16] },
    family: FamilyId.MIXTURE_OF_EXPERTS,
    toKnobs: (q) => ({ experts: p(q, 'threads'), temperature: 0.1 }),
  },
  {
    id: 'BP049',
    name: 'race_condition',
    stage: 6,
    risk: 0.9,
    description: 'Race condition adversarial template',
    bounds: { window_ns: [10, 1000] },
    family: FamilyId.LOW_RANK_ADAPTER,
    toKnobs: (q) => ({ rank: 16, alpha: p(q, 'window_ns') / 10 }),
  },
  {
    id: 'BP050',
    name: 'adversarial_noise',
    stage: 6,
    risk: 0.9,
    description: 'Adversarial noise injection',
    bounds: { epsilon: [0.1, 1.0] },
    family: FamilyId.HIGHWAY_GATE,
    toKnobs: (q) => ({ gateBias: 3, transformScale: 25 * p(q, 'epsilon') }),
  },
];

/** Growth methods (issue 12): Esper's own ids, from BP051 on. */
const GROWTH: readonly EntrySpec[] = [
  {
    id: 'BP051',
    name: 'widen_zero_out',
    stage: 0,
    risk: 0.1,
    description: 'Widen a hidden layer by new ReLU units (incoming He-normal, outgoing zero: function-preserving)',
    bounds: { units: [8, 40] },
    family: FamilyId.WIDEN,
    toKnobs: (q) => ({ units: p(q, 'units'), init: WidenInit.ZERO_OUT }),
  },
  {
    id: 'BP052',
    name: 'widen_gradmax',
    stage: 0,
    risk: 0.1,
    description:
      'Widen a hidden layer by new ReLU units, GradMax init (incoming zero, outgoing the top singular vectors of the gradient: function-preserving)',
    bounds: { units: [8, 40] },
    family: FamilyId.WIDEN,
    toKnobs: (q) => ({ units: p(q, 'units'), init: WidenInit.GRADMAX }),
  },
  {
    id: 'BP053',
    name: 'widen_gradmax_unit',
    stage: 0,
    risk: 0.1,
    description:
      "Widen a hidden layer by one bias-free ReLU unit, GradMax init (as the growers of GradMax's student–teacher protocol: function-preserving)",
    bounds: { units: [1, 1] },
    family: FamilyId.WIDEN,
    toKnobs: (q) => ({ units: p(q, 'units'), init: WidenInit.GRADMAX, bias: 0 }),
  },
  {
    id: 'BP054',
    name: 'widen_random_unit',
    stage: 0,
    risk: 0.1,
    description:
      "Widen a hidden layer by one bias-free ReLU unit, incoming zero, outgoing a random unit vector drawn at graft (GradMax's random baseline: function-preserving)",
    bounds: { units: [1, 1] },
    family: FamilyId.WIDEN,
    toKnobs: (q) => ({ units: p(q, 'units'), init: WidenInit.RANDOM, bias: 0 }),
  },
  {
    id: 'BP055',
    name: 'widen_random',
    stage: 0,
    risk: 0.1,
    description: 'Widen a hidden layer by new ReLU units, incoming zero, outgoing random unit vectors drawn at graft (function-preserving)',
    bounds: { units: [8, 40] },
    family: FamilyId.WIDEN,
    toKnobs: (q) => ({ units: p(q, 'units'), init: WidenInit.RANDOM }),
  },
  {
    id: 'BP056',
    name: 'widen_conv_zero_out',
    stage: 0,
    risk: 0.1,
    description:
      'Widen a conv block by new output channels through its activation and pool (incoming He-normal, outgoing zero: function-preserving)',
    bounds: { channels: [4, 12] },
    family: FamilyId.WIDEN_CONV,
    toKnobs: (q) => ({ channels: p(q, 'channels') }),
  },
];

function toEntry(spec: EntrySpec, tier: BlueprintTier): BlueprintEntry {
  const experimental = tier === BlueprintTier.EXPERIMENTAL;
  const highRisk = tier === BlueprintTier.HIGH_RISK;
  const descriptor = create(BlueprintDescriptorSchema, {
    blueprintId: spec.id,
    name: spec.name,
    tier,
    risk: spec.risk,
    stage: spec.stage,
    quarantineOnly: highRisk,
    approvalRequired: experimental || highRisk,
    description: spec.description,
    allowedParameters: Object.keys(spec.bounds)
      .sort()
      .map((name) => {
        const [minValue, maxValue] = spec.bounds[name] as readonly [number, number];
        return create(BlueprintParameterSchema, { name, minValue, maxValue });
      }),
    family: spec.family,
  });
  return { descriptor, toKnobs: spec.toKnobs };
}

/**
 * The default blueprints in id order: the prototype's 50 (SAFE, then EXPERIMENTAL, then
 * HIGH_RISK, its insertion order), then the SAFE growth blueprints from BP051.
 */
export const DEFAULT_BLUEPRINTS: readonly BlueprintEntry[] = Object.freeze([
  ...SAFE.map((s) => toEntry(s, BlueprintTier.SAFE)),
  ...EXPERIMENTAL.map((s) => toEntry(s, BlueprintTier.EXPERIMENTAL)),
  ...HIGH_RISK.map((s) => toEntry(s, BlueprintTier.HIGH_RISK)),
  ...GROWTH.map((s) => toEntry(s, BlueprintTier.SAFE)),
]);
