/**
 * Widening through Kasmina: BP051 (widen, zero-out) grafted at a WIDEN site through the
 * signed command, the gates and the lifecycle, with the host's outputs unchanged at graft,
 * isolation and counterfactual passes in their WIDEN form, and the fused seed equal to an
 * explicitly wider MLP.
 */
import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { buildOperatorCommand, OperatorAction, SeedEvent } from '../../src/kasmina/index.js';
import { checkIsolation } from '../../src/kasmina/isolation.js';
import { BlendMode, SeedLifecycleStage, SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { SeedSlot } from '../../src/kasmina/seed-slot.js';
import { resolveBlendPlan, WIDEN_BLEND_PLAN } from '../../src/kasmina/blending.js';
import { decodeWeights, decodeWeightsFromBytes, encodeWeights, encodeWeightsToBytes, seededRng, tf } from '../../src/tensor/index.js';
import { decodeArtifact, encodeArtifact } from '../../src/tezzeret/artifact.js';
import { mlpHost, type HostModel } from '../../src/tolaria/index.js';
import type { BlockHost } from '../../src/tolaria/hosts/block-host.js';
import { catalog, FAST_LIFECYCLE } from './fixtures/harness.js';
import { useCleanups, useTensorBackend, normals } from './fixtures/hooks.js';
import { germinateCommand, RUN, setup, validation } from './fixtures/setup.js';
import { expectSealedBeforeFusion, LeakingSlot } from './fixtures/isolation.js';

useTensorBackend();
const cleanups = useCleanups();

const S = SeedLifecycleStage;

function logits(host: HostModel, x: tf.Tensor, bypass?: string): Float32Array {
  return tf.tidy(() =>
    Float32Array.from(host.forward(x, { training: false, ...(bypass === undefined ? {} : { bypassSites: new Set([bypass]) }) }).dataSync()),
  );
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

describe('widening through Kasmina (BP051 at hidden<i>.widen)', () => {
  it('grafts through the gated lifecycle to FOSSILIZED with the host logits unchanged at graft (≤ 1e-6)', async () => {
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP051'] });
    const x = normals(3, [16, 8]);
    cleanups.push(() => x.dispose());
    const before = logits(host, x);
    // Grafted as the command is applied (no prefetch): TRAINING, straight-through.
    await h.kasmina.apply(h.sign(germinateCommand('w1', 'hidden1.widen', 'BP051')), context(0));
    expect(h.kasmina.stageOf('w1')).toBe(S.SEED_STAGE_TRAINING);
    expect(host.hooks.has('hidden1.widen')).toBe(true);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    // Function-preserving: one TRAINING step, then BLENDING at alpha 1 (no ramp); zero-out
    // keeps the outputs (no optimizer runs here).
    await h.kasmina.advance(context(1));
    expect(h.kasmina.stageOf('w1')).toBe(S.SEED_STAGE_BLENDING);
    const metrics = h.kasmina.exportSeedStates().find((s) => s.seedId === 'w1')?.metrics;
    expect([metrics?.alpha, metrics?.alphaTotalSteps]).toEqual([1, 0]);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    await h.kasmina.advance(context(2));
    expect(h.kasmina.stageOf('w1')).toBe(S.SEED_STAGE_SHADOWING);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    // The counterfactual pass bypasses the WIDEN site.
    expect(h.kasmina.contributionProbes()).toEqual([{ seedId: 'w1', siteId: 'hidden1.widen' }]);
    expect(maxAbsDiff(logits(host, x, 'hidden1.widen'), before)).toBe(0);
    let step = 3;
    for (; h.kasmina.stageOf('w1') === S.SEED_STAGE_SHADOWING; step += 1) await h.kasmina.advance(context(step));
    expect(h.kasmina.stageOf('w1')).toBe(S.SEED_STAGE_PROBATIONARY);
    await h.kasmina.recordValidation(validation('w1', 'hidden1.widen', 0.9, 0.85), context(step));
    for (let i = 0; i <= FAST_LIFECYCLE.probationSteps && h.kasmina.stageOf('w1') === S.SEED_STAGE_PROBATIONARY; i += 1, step += 1) {
      await h.kasmina.advance(context(step));
    }
    const walked = ['GERMINATED', 'TRAINING', 'BLENDING', 'SHADOWING', 'PROBATIONARY', 'FOSSILIZED'] as const;
    expect(h.kasmina.historyOf('w1')?.map((t) => t.to)).toEqual(walked.map((name) => S[`SEED_STAGE_${name}`]));
    const failures = h.telemetry.packets.flatMap((p) => p.events.filter((e) => e.description === SeedEvent.GATE_FAILURE));
    expect(failures).toEqual([]);
    expect(h.kasmina.stats().isolationViolations).toBe(0);
    expect(h.kasmina.stats().isolationChecks).toBeGreaterThan(0);
    const g1 = h.telemetry.packets.flatMap((p) =>
      p.events.filter((e) => e.description === SeedEvent.GATE_EVENT && e.attributes['gate'] === 'SEED_GATE_G1_GRADIENT_HEALTH'),
    );
    expect(g1[0]?.attributes['entry_output_max_abs']).toBe('0');
  });

  it('G1 culls a kernel that claims a function-preserving entry but whose stored weights make its output non-zero', async () => {
    // The artifact is well-formed and checksummed; only its stored V is not the build's zeros.
    const rewriteArtifact = async (bytes: Uint8Array): Promise<Uint8Array> => {
      const { header, weights } = decodeArtifact(bytes);
      const tensors = decodeWeights(decodeWeightsFromBytes(weights));
      try {
        const v = tensors['V'] as tf.Tensor;
        const named = { ...tensors, V: tf.onesLike(v) };
        const encoded = encodeWeightsToBytes(await encodeWeights(named));
        named.V.dispose();
        return encodeArtifact(header, encoded);
      } finally {
        tf.dispose(Object.values(tensors));
      }
    };
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP051'], rewriteArtifact });
    const x = normals(3, [16, 8]);
    cleanups.push(() => x.dispose());
    const before = logits(host, x);
    await h.kasmina.apply(h.sign(germinateCommand('w1', 'hidden1.widen', 'BP051')), context(0));
    expect(h.kasmina.historyOf('w1')?.map((t) => t.to)).toEqual([S.SEED_STAGE_GERMINATED, S.SEED_STAGE_CULLED, S.SEED_STAGE_EMBARGOED]);
    await h.kasmina.advance(context(1)); // emits the packets
    const failures = h.telemetry.packets.flatMap((p) => p.events.filter((e) => e.description === SeedEvent.GATE_FAILURE));
    expect(failures.map((e) => [e.attributes['gate'], e.attributes['reason']])).toEqual([
      ['SEED_GATE_G1_GRADIENT_HEALTH', 'function-preserving module has a non-zero output at graft'],
    ]);
    expect(host.hooks.has('hidden1.widen')).toBe(false);
    expect(maxAbsDiff(logits(host, x), before)).toBe(0);
  });

  it('G0 refuses a DENSE-site blueprint at a WIDEN site, BP051 at a DENSE site, and a non-RESIDUAL blend at a WIDEN site', async () => {
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP051', 'BP001'] });
    const refused = async (command: Parameters<typeof h.sign>[0]): Promise<unknown> => {
      try {
        await h.kasmina.apply(h.sign(command), context(0));
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const convex = buildOperatorCommand({
      action: OperatorAction.GERMINATE,
      trainingRunId: RUN,
      seedId: 'c',
      siteId: 'hidden2.widen',
      blueprintId: 'BP051',
      blendMode: BlendMode.CONVEX,
    });
    const errors = [
      await refused(germinateCommand('a', 'hidden1.widen', 'BP001')),
      await refused(germinateCommand('b', 'hidden1', 'BP051')),
      await refused(convex),
    ];
    expect(errors.map((e) => isEsperError(e, ErrorCode.KASMINA_GATE_FAILED))).toEqual([true, true, true]);
    expect(['a', 'b', 'c'].map((id) => h.kasmina.stageOf(id))).toEqual([undefined, undefined, undefined]);
    const reasons = errors.map((e) => (e as { details: Record<string, unknown> }).details['gate_reason']);
    expect(reasons).toEqual([
      'blueprint does not fit site',
      'blueprint does not fit site',
      expect.stringContaining('widen_requires_residual') as unknown,
    ]);
    expect(host.hooks.size).toBe(0);
  });

  it('resolves an unset mode to RESIDUAL at a WIDEN site and refuses others with widen_requires_residual', () => {
    const site = create(SeedSiteDescriptorSchema, { siteId: 'w', kind: SeedSiteKind.WIDEN, shape: [4], outputShape: [3] });
    const operation = (blendMode?: BlendMode) =>
      buildOperatorCommand({
        action: OperatorAction.GERMINATE,
        trainingRunId: RUN,
        seedId: 's',
        siteId: 'w',
        blueprintId: 'BP051',
        ...(blendMode === undefined ? {} : { blendMode }),
      });
    const op = (blendMode?: BlendMode) => {
      const command = operation(blendMode);
      if (command.payload.case !== 'seedOperation') throw new Error('not a seed operation');
      return command.payload.value;
    };
    expect(resolveBlendPlan(op(), undefined, site)).toEqual(WIDEN_BLEND_PLAN);
    expect(resolveBlendPlan(op(BlendMode.RESIDUAL), undefined, site).mode).toBe(BlendMode.RESIDUAL);
    let error: unknown;
    try {
      resolveBlendPlan(op(BlendMode.CHANNEL), undefined, site);
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.KASMINA_BLEND_CONFIG_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details['reason']).toBe('widen_requires_residual');
  });

  it('isolation: no gradient reaches the widened layer input through the seed; a leaking slot is caught', () => {
    const site = create(SeedSiteDescriptorSchema, { siteId: 'w', kind: SeedSiteKind.WIDEN, shape: [6], outputShape: [5] });
    const build = () => catalog.build('BP051', site, { seed: 2, scope: `iso-${Math.random().toString(36).slice(2)}` });
    const slot = new SeedSlot({ seedId: 's', siteId: 'w', site, module: build(), plan: WIDEN_BLEND_PLAN });
    cleanups.push(() => slot.dispose());
    expectSealedBeforeFusion(slot);
    const leaky = new LeakingSlot({ seedId: 'l', siteId: 'w', site, module: build(), plan: WIDEN_BLEND_PLAN, phase: 'blended', alpha: 1 });
    cleanups.push(() => leaky.dispose());
    // Give V weight so the leak is visible (zero-out V passes no gradient back into u).
    tf.tidy(() => leaky.module.variables[2]?.assign(tf.ones([24, 5])));
    expect(checkIsolation(leaky, seededRng(4)).passed).toBe(false);
    expect(() => slot.apply(tf.zeros([1, 6]), { training: false })).toThrow(/contribute\(\)/);
  });

  it('a fused widen seed makes the host equal an explicitly wider MLP with the concatenated weights (≤ 1e-5)', () => {
    const [size, n, classes] = [8, 16, 3];
    const host = mlpHost({ inputShape: [size], hidden: [n], numClasses: classes, seed: 7, hostId: 'widen-equiv-small' });
    cleanups.push(() => host.dispose());
    const site = host.descriptor.sites.find((s) => s.siteId === 'hidden1.widen');
    if (site === undefined) throw new Error('no WIDEN site');
    const module = catalog.build('BP051', site, { seed: 9, parameters: { units: 8 }, scope: 'widen-equiv-seed' });
    const slot = new SeedSlot({ seedId: 'f', siteId: 'hidden1.widen', site, module, plan: WIDEN_BLEND_PLAN, phase: 'fused', alpha: 1 });
    cleanups.push(() => slot.dispose());
    const [u, c, v] = module.variables as [tf.Variable, tf.Variable, tf.Variable];
    tf.tidy(() => {
      v.assign(tf.randomNormal([8, classes], 0, 0.5, 'float32', 1));
      c.assign(tf.randomNormal([8], 0, 0.1, 'float32', 2));
    });
    host.attach('hidden1.widen', slot);
    const wide = mlpHost({ inputShape: [size], hidden: [n + 8], numClasses: classes, seed: 8, hostId: 'widen-equiv-wide' });
    cleanups.push(() => wide.dispose());
    const [h1, head] = (host as BlockHost).blocks.map((b) => b.dense);
    const [w1, wHead] = (wide as BlockHost).blocks.map((b) => b.dense);
    tf.tidy(() => {
      w1?.kernel.assign(tf.concat([h1?.kernel as tf.Tensor2D, u as tf.Tensor2D], 1));
      w1?.bias?.assign(tf.concat([h1?.bias as tf.Tensor1D, c as tf.Tensor1D], 0));
      wHead?.kernel.assign(tf.concat([head?.kernel as tf.Tensor2D, v as tf.Tensor2D], 0));
      wHead?.bias?.assign(head?.bias as tf.Tensor);
    });
    const x = normals(5, [32, size]);
    cleanups.push(() => x.dispose());
    expect(maxAbsDiff(logits(host, x), logits(wide, x))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(logits(host, x), logits(host, x, 'hidden1.widen'))).toBeGreaterThan(1e-3);
  });

  it('BP052 (GradMax): logits unchanged at graft and after V is set from the served gradient (≤ 1e-6); probes until initialised', async () => {
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP052'] });
    const x = normals(3, [16, 8]);
    cleanups.push(() => x.dispose());
    const before = logits(host, x);
    await h.kasmina.apply(h.sign(germinateCommand('g1', 'hidden1.widen', 'BP052')), context(0));
    await h.kasmina.advance(context(1));
    expect(h.kasmina.stageOf('g1')).toBe(S.SEED_STAGE_TRAINING);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    // Waiting for its gradient: asked for until served; an advance without it changes nothing.
    expect(h.kasmina.gradientProbes()).toEqual([{ seedId: 'g1', siteId: 'hidden1.widen' }]);
    await h.kasmina.advance(context(2));
    expect(h.kasmina.gradientProbes()).toHaveLength(1);
    // Site hidden1.widen: u is the 8-wide input, the next pre-activation hidden2's 16 units.
    const matrix = Float32Array.from({ length: 8 * 16 }, (_, i) => Math.cos(i));
    const widenGradients = new Map([['hidden1.widen', { inputs: 8, outputs: 16, matrix }]]);
    await h.kasmina.advance(context(3, { widenGradients }));
    expect(h.kasmina.gradientProbes()).toEqual([]);
    const slot = host.hooks.get('hidden1.widen') as SeedSlot;
    const v = slot.module.variables[2]!.dataSync();
    expect(Math.max(...Array.from(v).map(Math.abs))).toBeGreaterThan(0);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    // Still in TRAINING: the step that served the gradient ran with the module inert. One
    // step with V set, then BLENDING at alpha 1 with no optimizer: still the host's function
    // (U = 0, f(0) = 0).
    expect(h.kasmina.stageOf('g1')).toBe(S.SEED_STAGE_TRAINING);
    await h.kasmina.advance(context(4));
    expect(h.kasmina.stageOf('g1')).toBe(S.SEED_STAGE_BLENDING);
    expect(h.kasmina.exportSeedStates().find((s) => s.seedId === 'g1')?.metrics?.alpha).toBe(1);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    const inits = h.telemetry.packets.flatMap((p) => p.events.filter((e) => e.description === SeedEvent.GRADIENT_INIT));
    expect(inits).toHaveLength(1);
    expect(inits[0]?.attributes['site_id']).toBe('hidden1.widen');
  });
});
