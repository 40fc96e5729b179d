/**
 * Channel widening through Kasmina: BP056 (widen_conv, zero-out) grafted at the WIDEN sites
 * of a real CNN host through the signed command, the gates and the lifecycle, with the host's
 * logits unchanged at graft, isolation in its WIDEN form on feature maps, G0 keeping the
 * conv and the dense widening apart, and the fused seed equal to an explicitly wider CNN.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { SeedEvent } from '../../src/kasmina/index.js';
import { checkIsolation } from '../../src/kasmina/isolation.js';
import { WIDEN_BLEND_PLAN } from '../../src/kasmina/blending.js';
import { SeedSlot } from '../../src/kasmina/seed-slot.js';
import { SeedLifecycleStage, type SeedSiteDescriptor } from '../../src/leyline/index.js';
import { seededRng, tf } from '../../src/tensor/index.js';
import { cnnHost, type HostModel } from '../../src/tolaria/index.js';
import type { BlockHost } from '../../src/tolaria/hosts/block-host.js';
import { catalog, FAST_LIFECYCLE } from './fixtures/harness.js';
import { normals, useCleanups, useTensorBackend } from './fixtures/hooks.js';
import { germinateCommand, setup, validation } from './fixtures/setup.js';
import { expectSealedBeforeFusion, LeakingSlot } from './fixtures/isolation.js';

useTensorBackend({ leakCheck: true });
const cleanups = useCleanups();

const S = SeedLifecycleStage;
/** 8×8 grey images, conv 2 → pool → conv 3 → pool → 2×2×3 → 3 classes. */
const INPUT = [8, 8, 1] as const;
let hostCount = 0;

function smallCnn(channels: readonly number[] = [2, 3]): BlockHost {
  hostCount += 1;
  const host = cnnHost({ inputShape: INPUT, channels, numClasses: 3, seed: 5, hostId: `cnn-widen-${hostCount}` }) as BlockHost;
  cleanups.push(() => {
    // A fossil stays in the host when Kasmina closes (it is part of the network): its owner frees it.
    for (const siteId of [...host.hooks.keys()]) (host.detach(siteId) as SeedSlot | undefined)?.dispose();
    host.dispose();
  });
  return host;
}

function logits(host: HostModel, x: tf.Tensor, bypass?: string): Float32Array {
  return tf.tidy(() =>
    Float32Array.from(host.forward(x, { training: false, ...(bypass === undefined ? {} : { bypassSites: new Set([bypass]) }) }).dataSync()),
  );
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

function siteOf(host: HostModel, siteId: string): SeedSiteDescriptor {
  const site = host.descriptor.sites.find((s) => s.siteId === siteId);
  if (site === undefined) throw new Error(`no site ${siteId}`);
  return site;
}

function input(seed: number): tf.Tensor {
  const x = normals(seed, [12, ...INPUT]);
  cleanups.push(() => x.dispose());
  return x;
}

describe('channel widening through Kasmina (BP056 at block<i>.widen)', () => {
  it('grafts at block2.widen through the gated lifecycle to FOSSILIZED with the logits unchanged until training moves V (≤ 1e-6)', async () => {
    const { h, host, context } = await setup(cleanups, { host: smallCnn(), blueprints: ['BP056'] });
    const x = input(3);
    const before = logits(host, x);
    await h.kasmina.apply(h.sign(germinateCommand('c1', 'block2.widen', 'BP056')), context(0));
    expect(h.kasmina.stageOf('c1')).toBe(S.SEED_STAGE_TRAINING);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    // Function-preserving: one TRAINING step, then BLENDING at alpha 1; no optimizer runs here.
    await h.kasmina.advance(context(1));
    expect(h.kasmina.stageOf('c1')).toBe(S.SEED_STAGE_BLENDING);
    expect(h.kasmina.exportSeedStates().find((s) => s.seedId === 'c1')?.metrics?.alpha).toBe(1);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    await h.kasmina.advance(context(2));
    expect(h.kasmina.stageOf('c1')).toBe(S.SEED_STAGE_SHADOWING);
    expect(h.kasmina.contributionProbes()).toEqual([{ seedId: 'c1', siteId: 'block2.widen' }]);
    let step = 3;
    for (; h.kasmina.stageOf('c1') === S.SEED_STAGE_SHADOWING; step += 1) await h.kasmina.advance(context(step));
    await h.kasmina.recordValidation(validation('c1', 'block2.widen', 0.9, 0.85), context(step));
    for (let i = 0; i <= FAST_LIFECYCLE.probationSteps && h.kasmina.stageOf('c1') === S.SEED_STAGE_PROBATIONARY; i += 1, step += 1) {
      await h.kasmina.advance(context(step));
    }
    const walked = ['GERMINATED', 'TRAINING', 'BLENDING', 'SHADOWING', 'PROBATIONARY', 'FOSSILIZED'] as const;
    expect(h.kasmina.historyOf('c1')?.map((t) => t.to)).toEqual(walked.map((name) => S[`SEED_STAGE_${name}`]));
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    const events = h.telemetry.packets.flatMap((p) => p.events);
    expect(events.filter((e) => e.description === SeedEvent.GATE_FAILURE)).toEqual([]);
    const g1 = events.filter((e) => e.description === SeedEvent.GATE_EVENT && e.attributes['gate'] === 'SEED_GATE_G1_GRADIENT_HEALTH');
    expect(g1[0]?.attributes['entry_output_max_abs']).toBe('0');
    const g3 = events.find((e) => e.description === SeedEvent.GATE_EVENT && e.attributes['gate'] === 'SEED_GATE_G3_INTERFACE');
    expect(g3?.attributes['output_shape']).toBe('[4,3]');
    expect([h.kasmina.stats().isolationViolations, h.kasmina.stats().isolationChecks > 0]).toEqual([0, true]);
  });

  it('grafts at block1.widen (new conv1 channels into conv2) with the logits unchanged (≤ 1e-6)', async () => {
    const { h, host, context } = await setup(cleanups, { host: smallCnn(), blueprints: ['BP056'] });
    const x = input(4);
    const before = logits(host, x);
    await h.kasmina.apply(h.sign(germinateCommand('c2', 'block1.widen', 'BP056')), context(0));
    await h.kasmina.advance(context(1));
    expect(h.kasmina.stageOf('c2')).toBe(S.SEED_STAGE_BLENDING);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(logits(host, x, 'block1.widen'), before)).toBe(0);
  });

  it('G0 refuses the conv widening at an MLP WIDEN site and the dense widening at a conv WIDEN site', async () => {
    const refusal = async (
      blueprints: readonly string[],
      host: HostModel | undefined,
      site: string,
      blueprint: string,
    ): Promise<unknown> => {
      const { h, context } = await setup(cleanups, { blueprints, ...(host === undefined ? {} : { host }) });
      try {
        await h.kasmina.apply(h.sign(germinateCommand('g', site, blueprint)), context(0));
      } catch (error) {
        return error;
      }
      return undefined;
    };
    const errors = [
      await refusal(['BP051'], smallCnn(), 'block2.widen', 'BP051'),
      await refusal(['BP051'], undefined, 'hidden1.widen', 'BP056'),
    ];
    expect(errors.map((e) => isEsperError(e, ErrorCode.KASMINA_GATE_FAILED))).toEqual([true, true]);
    expect(errors.map((e) => (e as { details: Record<string, unknown> }).details['gate_reason'])).toEqual([
      'blueprint does not fit site',
      'blueprint does not fit site',
    ]);
  });

  it('isolation: no gradient reaches the widened block input through the seed outside the fused phase; a leaking slot is caught', () => {
    const site = siteOf(smallCnn(), 'block2.widen');
    const build = (scope: string) => catalog.build('BP056', site, { seed: 2, parameters: { channels: 4 }, scope });
    const slot = new SeedSlot({ seedId: 's', siteId: site.siteId, site, module: build('iso-conv'), plan: WIDEN_BLEND_PLAN });
    cleanups.push(() => slot.dispose());
    expectSealedBeforeFusion(slot);
    const leaky = new LeakingSlot({ seedId: 'l', siteId: site.siteId, site, module: build('iso-conv-leak'), plan: WIDEN_BLEND_PLAN });
    cleanups.push(() => leaky.dispose());
    leaky.phase = 'blended';
    leaky.alpha = 1;
    // Give V weight so the leak is visible (zero-out V passes no gradient back into u).
    tf.tidy(() => leaky.module.variables[2]?.assign(tf.onesLike(leaky.module.variables[2] as tf.Variable)));
    expect(checkIsolation(leaky, seededRng(4)).passed).toBe(false);
  });

  it.each([
    ['block2.widen', [2, 3 + 4]],
    ['block1.widen', [2 + 4, 3]],
  ] as const)('a fused seed at %s makes the host equal an explicitly wider CNN with the concatenated weights (≤ 1e-5)', (siteId, wider) => {
    const host = smallCnn();
    const site = siteOf(host, siteId);
    const module = catalog.build('BP056', site, { seed: 9, parameters: { channels: 4 }, scope: `fused-${siteId}` });
    const slot = new SeedSlot({ seedId: 'f', siteId, site, module, plan: WIDEN_BLEND_PLAN, phase: 'fused', alpha: 1 });
    cleanups.push(() => slot.dispose());
    const [u, c, v] = module.variables as [tf.Variable, tf.Variable, tf.Variable];
    tf.tidy(() => {
      v.assign(tf.randomNormal(v.shape, 0, 0.5, 'float32', 1));
      c.assign(tf.randomNormal(c.shape, 0, 0.1, 'float32', 2));
    });
    host.attach(siteId, slot);
    const wide = smallCnn(wider);
    const layers = (h: BlockHost) => h.blocks.flatMap((b) => b.conv ?? b.dense ?? []);
    const [conv1, conv2, head] = layers(host);
    const [wConv1, wConv2, wHead] = layers(wide);
    tf.tidy(() => {
      if (siteId === 'block2.widen') {
        wConv1?.kernel.assign(conv1?.kernel as tf.Tensor);
        wConv1?.bias?.assign(conv1?.bias as tf.Tensor);
        wConv2?.kernel.assign(tf.concat([conv2?.kernel as tf.Tensor4D, u as tf.Tensor4D], 3));
        wConv2?.bias?.assign(tf.concat([conv2?.bias as tf.Tensor1D, c as tf.Tensor1D], 0));
        // The head reads the flattened [2, 2, channels] map, channel fastest: interleave V's rows per position.
        const positions = 2 * 2;
        const rows = tf.concat([tf.reshape(head?.kernel as tf.Tensor, [positions, 3, 3]), tf.reshape(v, [positions, 4, 3])], 1);
        wHead?.kernel.assign(tf.reshape(rows, [positions * 7, 3]));
      } else {
        wConv1?.kernel.assign(tf.concat([conv1?.kernel as tf.Tensor4D, u as tf.Tensor4D], 3));
        wConv1?.bias?.assign(tf.concat([conv1?.bias as tf.Tensor1D, c as tf.Tensor1D], 0));
        wConv2?.kernel.assign(tf.concat([conv2?.kernel as tf.Tensor4D, v as tf.Tensor4D], 2));
        wConv2?.bias?.assign(conv2?.bias as tf.Tensor);
        wHead?.kernel.assign(head?.kernel as tf.Tensor);
      }
      wHead?.bias?.assign(head?.bias as tf.Tensor);
    });
    const x = input(5);
    expect(maxAbsDiff(logits(host, x), logits(wide, x))).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(logits(host, x), logits(host, x, siteId))).toBeGreaterThan(1e-3);
  });
});
