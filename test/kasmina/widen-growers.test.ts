/**
 * The one-unit growers of GradMax's student–teacher protocol (BP053 GradMax, BP054 random)
 * and the default-size random widening (BP055) through Kasmina: each enters
 * function-preserving (host logits unchanged at graft, ≤ 1e-6), random outgoing rows are
 * drawn at graft from the run's stream — different per seed, the same for the same stream —
 * and one layer grows again at its next slot.
 */
import { describe, expect, it } from 'vitest';
import { SeedEvent } from '../../src/kasmina/index.js';
import { SeedLifecycleStage } from '../../src/leyline/index.js';
import type { SeedSlot } from '../../src/kasmina/seed-slot.js';
import { tf } from '../../src/tensor/index.js';
import { mlpHost, type HostModel } from '../../src/tolaria/index.js';
import { useCleanups, useTensorBackend, normals } from './fixtures/hooks.js';
import { germinateCommand, setup } from './fixtures/setup.js';

useTensorBackend();
const cleanups = useCleanups();

const S = SeedLifecycleStage;

function logits(host: HostModel, x: tf.Tensor): Float32Array {
  return tf.tidy(() => Float32Array.from(host.forward(x, { training: false }).dataSync()));
}

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

let hosts = 0;
/** An 8 → 16 → 16 → 3 MLP with two growth slots per hidden layer. */
function slottedHost(): HostModel {
  hosts += 1;
  const host = mlpHost({ inputShape: [8], hidden: [16, 16], numClasses: 3, seed: 1, widenSlots: 2, hostId: `slotted${hosts}` });
  cleanups.push(() => host.dispose());
  return host;
}

/** The outgoing weights V of the seed at `siteId`. */
const outgoing = (host: HostModel, siteId: string): number[] =>
  Array.from((host.hooks.get(siteId) as SeedSlot).module.variables.at(-1)!.dataSync());

describe('one-unit and random widening through Kasmina (BP053–BP055)', () => {
  it.each(['BP054', 'BP055'])('%s: V drawn at graft (non-zero), host logits unchanged at graft and at alpha 1 (≤ 1e-6)', async (id) => {
    const { h, host, context } = await setup(cleanups, { blueprints: [id] });
    const x = normals(3, [16, 8]);
    cleanups.push(() => x.dispose());
    const before = logits(host, x);
    await h.kasmina.apply(h.sign(germinateCommand('r1', 'hidden1.widen', id)), context(0));
    expect(h.kasmina.stageOf('r1')).toBe(S.SEED_STAGE_TRAINING);
    expect(h.kasmina.gradientProbes()).toEqual([]);
    expect(Math.max(...outgoing(host, 'hidden1.widen').map(Math.abs))).toBeGreaterThan(0);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    await h.kasmina.advance(context(1));
    expect(h.kasmina.stageOf('r1')).toBe(S.SEED_STAGE_BLENDING);
    expect(h.kasmina.exportSeedStates().find((s) => s.seedId === 'r1')?.metrics?.alpha).toBe(1);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    const failures = h.telemetry.packets.flatMap((p) => p.events.filter((e) => e.description === SeedEvent.GATE_FAILURE));
    expect(failures).toEqual([]);
  });

  it('a seed grafted by a command applied after a step (a per-step decision) counts its TRAINING steps from the next step', async () => {
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP054'] });
    await h.kasmina.apply(h.sign(germinateCommand('r1', 'hidden1.widen', 'BP054')), context(7));
    // This step's signals were measured without the seed: no gradient norm at its site.
    await h.kasmina.advance(context(7, { hookGradientNorms: new Map() }));
    expect(h.kasmina.stageOf('r1')).toBe(S.SEED_STAGE_TRAINING);
    await h.kasmina.advance(context(8, { hookGradientNorms: new Map([['hidden1.widen', 0.3]]) }));
    expect(h.kasmina.stageOf('r1')).toBe(S.SEED_STAGE_BLENDING);
    expect(host.hooks.has('hidden1.widen')).toBe(true);
  });

  it('BP053: one bias-free unit, logits unchanged at graft and after V is set from the served gradient (≤ 1e-6)', async () => {
    const { h, host, context } = await setup(cleanups, { blueprints: ['BP053'] });
    const x = normals(4, [16, 8]);
    cleanups.push(() => x.dispose());
    const before = logits(host, x);
    await h.kasmina.apply(h.sign(germinateCommand('g1', 'hidden1.widen', 'BP053')), context(0));
    const slot = host.hooks.get('hidden1.widen') as SeedSlot;
    expect(slot.module.variables.map((v) => v.shape)).toEqual([
      [8, 1],
      [1, 16],
    ]);
    expect(h.kasmina.gradientProbes()).toEqual([{ seedId: 'g1', siteId: 'hidden1.widen' }]);
    const matrix = Float32Array.from({ length: 8 * 16 }, (_, i) => Math.sin(i + 1));
    await h.kasmina.advance(context(1, { widenGradients: new Map([['hidden1.widen', { inputs: 8, outputs: 16, matrix }]]) }));
    const v = outgoing(host, 'hidden1.widen');
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
    await h.kasmina.advance(context(2));
    expect(h.kasmina.stageOf('g1')).toBe(S.SEED_STAGE_BLENDING);
    expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
  });

  it('grows one layer twice at its two slots; the two random units get different rows, a run with the same stream the same rows', async () => {
    const rows = async (): Promise<[number[], number[]]> => {
      const { h, host, context } = await setup(cleanups, { host: slottedHost(), blueprints: ['BP054'] });
      const x = normals(5, [16, 8]);
      cleanups.push(() => x.dispose());
      const before = logits(host, x);
      await h.kasmina.apply(h.sign(germinateCommand('a', 'hidden1.widen', 'BP054')), context(0));
      await h.kasmina.apply(h.sign(germinateCommand('b', 'hidden1.widen2', 'BP054')), context(0));
      expect([h.kasmina.stageOf('a'), h.kasmina.stageOf('b')]).toEqual([S.SEED_STAGE_TRAINING, S.SEED_STAGE_TRAINING]);
      expect(maxAbsDiff(logits(host, x), before)).toBeLessThanOrEqual(1e-6);
      return [outgoing(host, 'hidden1.widen'), outgoing(host, 'hidden1.widen2')];
    };
    const [a, b] = await rows();
    expect(a).not.toEqual(b);
    for (const row of [a, b]) {
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
      expect(row.every((value) => value >= 0)).toBe(true);
    }
    expect(await rows()).toEqual([a, b]);
  });
});
