import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/index.js';
import { KarnCatalog, type SeedModule } from '../../src/karn/index.js';
import {
  BlendConfigSchema,
  BlendMode,
  CommandSeedOperationSchema,
  SeedOperation,
  type SeedSiteDescriptor,
} from '../../src/leyline/index.js';
import { oneHotFloat, seededRng, tf } from '../../src/tensor/index.js';
import { mlpHost, type HostModel } from '../../src/tolaria/index.js';
import { DEFAULT_BLEND_PLAN, resolveBlendPlan } from '../../src/kasmina/blending.js';
import { SeedSlot } from '../../src/kasmina/seed-slot.js';
import { thrownBy } from '../support/thrown.js';
import { normals, useTensorBackend } from './fixtures/hooks.js';

const catalog = new KarnCatalog();
const BATCH = 5;

/** A SeedModule stand-in: counts calls, returns whatever `forward` gives. */
function fakeModule(
  forward: (x: tf.Tensor) => tf.Tensor,
  variables: tf.Variable[] = [],
): SeedModule & { calls: number; disposeCalls: number } {
  const module = {
    blueprintId: 'FAKE',
    family: 'zero_control' as const,
    variables,
    calls: 0,
    disposeCalls: 0,
    apply(x: tf.Tensor): tf.Tensor {
      module.calls += 1;
      return tf.tidy(() => forward(x));
    },
    dispose(): void {
      module.disposeCalls += 1;
    },
  };
  return module;
}

let host: HostModel;
let site: SeedSiteDescriptor;
let inputs: tf.Tensor;
let labels: tf.Tensor;
useTensorBackend({ leakCheck: true });

beforeAll(() => {
  host = mlpHost({ inputSize: 6, hidden: [8, 8], numClasses: 3, seed: 1, hostId: 'slot-host' });
  site = host.descriptor.sites.find((s) => s.siteId === 'hidden1') as SeedSiteDescriptor;
  inputs = normals(7, [BATCH, 6]);
  labels = tf.tensor1d([0, 1, 2, 1, 0], 'int32');
});

afterAll(() => {
  inputs.dispose();
  labels.dispose();
  host.dispose();
});

function logits(bypassSites?: ReadonlySet<string>): Float32Array {
  return tf.tidy(() =>
    Float32Array.from(host.forward(inputs, { training: true, ...(bypassSites === undefined ? {} : { bypassSites }) }).dataSync()),
  );
}

function gradients(): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  tf.tidy(() => {
    const { grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(oneHotFloat(labels, 3), host.forward(inputs, { training: true })) as tf.Scalar,
      host.trainableVariables(),
    );
    for (const [name, g] of Object.entries(grads)) out.set(name, Float32Array.from(g.dataSync()));
  });
  return out;
}

function maxAbs(values: Float32Array | undefined): number {
  return (values ?? new Float32Array()).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function newSlot(scope: string, plan = DEFAULT_BLEND_PLAN): SeedSlot {
  const module = catalog.build('BP009', site, { seed: 2, scope });
  return new SeedSlot({ seedId: `seed-${scope}`, siteId: site.siteId, site, module, plan });
}

describe('SeedSlot construction', () => {
  it('rejects a module whose output shape differs from the site, without leaking the probe', () => {
    const before = tf.memory().numTensors;
    const module = fakeModule((x) => tf.slice(x, [0, 0], [1, 4]));
    const error = thrownBy(
      () => new SeedSlot({ seedId: 's', siteId: site.siteId, site, module, plan: DEFAULT_BLEND_PLAN }),
      ErrorCode.KASMINA_GRAFT_SHAPE_MISMATCH,
    );
    expect(error.details).toMatchObject({
      expected: '[1, 8]',
      actual: '[1, 4]',
      siteId: 'hidden1',
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(module.disposeCalls).toBe(0);
  });

  it('reports a module that fails on the probe as a shape mismatch', () => {
    const module = fakeModule(() => {
      throw new Error('matMul: inner dimensions differ');
    });
    thrownBy(
      () => new SeedSlot({ seedId: 's', siteId: site.siteId, site, module, plan: DEFAULT_BLEND_PLAN }),
      ErrorCode.KASMINA_GRAFT_SHAPE_MISMATCH,
    );
  });

  it('rejects a CHANNEL plan that does not fit the site and invalid alphas', () => {
    const slot = newSlot('ctor');
    try {
      const wide = create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'BP009', siteId: 'x' });
      const plan = resolveBlendPlan(
        wide,
        create(BlendConfigSchema, {
          mode: BlendMode.CHANNEL,
          alphaVec: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
        }),
        {
          ...site,
          shape: [16],
        },
      );
      thrownBy(() => (slot.plan = plan), ErrorCode.KASMINA_BLEND_CONFIG_INVALID);
      thrownBy(() => (slot.alpha = 1.5), ErrorCode.INVALID_ARGUMENT);
      expect(slot.parameterCount).toBe(slot.module.variables.reduce((n, v) => n + v.size, 0));
      expect(slot.parameterCount).toBeGreaterThan(0);
    } finally {
      slot.dispose();
    }
  });
});

describe('SeedSlot.probe', () => {
  it("reports the module's output shape and finiteness on a seeded batch of the site shape, leaving no tensors", () => {
    const slot = newSlot('probe-ok');
    try {
      const before = tf.memory().numTensors;
      expect(slot.probe(seededRng(1))).toEqual({
        inputShape: [4, 8],
        expectedShape: [4, 8],
        outputShape: [4, 8],
        finite: true,
        maxAbs: expect.any(Number) as unknown,
      });
      expect(slot.probe(seededRng(1), 2).inputShape).toEqual([2, 8]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      slot.dispose();
    }
  });

  it('measures a NaN output, a batch-dependent shape and a module that throws', () => {
    const slot = (forward: (x: tf.Tensor) => tf.Tensor): SeedSlot =>
      new SeedSlot({ seedId: 's', siteId: site.siteId, site, module: fakeModule(forward), plan: DEFAULT_BLEND_PLAN });
    expect(slot((x) => tf.mul(x, tf.scalar(Number.NaN))).probe(seededRng(1))).toMatchObject({ finite: false, maxAbs: Number.NaN });
    expect(slot((x) => tf.zerosLike(x)).probe(seededRng(1)).maxAbs).toBe(0);
    const doubled = slot((x) => tf.mul(x, tf.scalar(2)));
    expect(doubled.probe(seededRng(1)).maxAbs).toBeGreaterThan(0);
    expect(slot((x) => tf.slice(x, [0, 0], [1, -1])).probe(seededRng(1)).outputShape).toEqual([1, 8]);
    let calls = 0;
    const flaky = slot((x) => {
      calls += 1;
      if (calls > 1) throw new Error('broke after the graft');
      return tf.clone(x);
    });
    expect(flaky.probe(seededRng(1))).toEqual({
      inputShape: [4, 8],
      expectedShape: [4, 8],
      outputShape: [],
      finite: false,
      maxAbs: Number.NaN,
    });
  });
});

describe('SeedSlot on a real host', () => {
  it('isolated: host logits and host gradients are bit-identical to no hook; seed variables learn', () => {
    const plainLogits = logits();
    const plainGrads = gradients();
    const slot = newSlot('iso');
    host.attach(site.siteId, slot);
    try {
      expect(slot.phase).toBe('isolated');
      expect(logits()).toEqual(plainLogits);
      const grads = gradients();
      for (const v of host.variables) expect(grads.get(v.name), v.name).toEqual(plainGrads.get(v.name));
      const seedNorm = slot.trainableVariables().reduce((m, v) => Math.max(m, maxAbs(grads.get(v.name))), 0);
      expect(seedNorm).toBeGreaterThan(0);
    } finally {
      host.detach(site.siteId);
      slot.dispose();
    }
  });

  it('blended: changes the logits; alpha 0 and a bypassed site both give the host exactly', () => {
    const plainLogits = logits();
    const slot = newSlot('blend');
    host.attach(site.siteId, slot);
    try {
      slot.phase = 'blended';
      slot.alpha = 0.5;
      const blended = logits();
      expect(blended).not.toEqual(plainLogits);
      expect(slot.effectiveAlphas()).toBe(0.5);
      expect(logits(new Set([site.siteId]))).toEqual(plainLogits);
      slot.alpha = 0;
      expect(logits()).toEqual(plainLogits);
    } finally {
      host.detach(site.siteId);
      slot.dispose();
    }
  });

  it('paused: returns the activation itself, never runs the module, exposes no variables', () => {
    const module = fakeModule((x) => tf.mul(x, tf.scalar(3)));
    const slot = new SeedSlot({ seedId: 'p', siteId: site.siteId, site, module, plan: DEFAULT_BLEND_PLAN });
    const callsAfterProbe = module.calls;
    slot.phase = 'paused';
    const x = normals(4, [2, 8]);
    try {
      expect(slot.apply(x, { training: true })).toBe(x);
      expect(module.calls).toBe(callsAfterProbe);
      expect(slot.trainableVariables()).toEqual([]);
    } finally {
      x.dispose();
      slot.dispose();
    }
  });

  it('attach, train a step and detach+dispose leaves tf.memory().numTensors where it was before the graft', () => {
    const before = tf.memory().numTensors;
    const slot = newSlot('mem');
    host.attach(site.siteId, slot);
    slot.phase = 'blended';
    slot.alpha = 0.3;
    gradients();
    logits();
    host.detach(site.siteId);
    slot.dispose();
    slot.dispose();
    expect(slot.disposed).toBe(true);
    expect(slot.trainableVariables()).toEqual([]);
    expect(tf.memory().numTensors).toBe(before);
    const x = normals(5, [1, 8]);
    try {
      thrownBy(() => slot.apply(x, { training: false }), ErrorCode.INVALID_STATE);
    } finally {
      x.dispose();
    }
  });
});

describe('SeedSlot fused (FOSSILIZED)', () => {
  it('feeds the module the live activation, so the seed path carries gradient into the host', () => {
    const init = tf.fill([8, 8], 0.1);
    const w = tf.variable(init, true, 'fused-test/w');
    init.dispose();
    const module = fakeModule((x) => tf.matMul(x as tf.Tensor2D, w), [w]);
    const slot = new SeedSlot({ seedId: 'f1', siteId: 'hidden1', site, module, plan: DEFAULT_BLEND_PLAN });
    slot.alpha = 1;
    const x = normals(3, [BATCH, 8]);
    const r = normals(4, [BATCH, 8]);
    const gradThrough = (phase: 'blended' | 'fused'): Float32Array => {
      slot.phase = phase;
      return tf.tidy(() =>
        Float32Array.from(
          tf
            .grad((a: tf.Tensor) => tf.sum(tf.mul(r, slot.apply(a, { training: true }))))(x)
            .dataSync(),
        ),
      );
    };
    // CONVEX at alpha 1 while blended: the host path gets no gradient at all.
    expect(Array.from(gradThrough('blended')).every((g) => g === 0)).toBe(true);
    // Fused: ∂/∂x of x + s(x) = r + r·Wᵀ, not zero.
    const fused = gradThrough('fused');
    const expected = tf.tidy(() => Float32Array.from(tf.add(r, tf.matMul(r as tf.Tensor2D, w, false, true)).dataSync()));
    fused.forEach((g, i) => expect(g).toBeCloseTo(expected[i] as number, 5));
    // Forward value is the same in both phases.
    const forward = (phase: 'blended' | 'fused') => {
      slot.phase = phase;
      return tf.tidy(() => Array.from(slot.apply(x, { training: false }).dataSync()));
    };
    expect(forward('fused')).toEqual(forward('blended'));
    x.dispose();
    r.dispose();
    w.dispose();
  });
});
