import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock } from '../../src/core/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import {
  BlendConfigSchema,
  BlendMode,
  CircuitBreakerState,
  CommandSeedOperationSchema,
  SeedOperation,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  type SeedSiteDescriptor,
} from '../../src/leyline/index.js';
import { seededRng, tf } from '../../src/tensor/index.js';
import { DEFAULT_BLEND_PLAN, resolveBlendPlan, type BlendPlan } from '../../src/kasmina/blending.js';
import { checkIsolation, ISOLATION_TOLERANCE, IsolationMonitor } from '../../src/kasmina/isolation.js';
import { SeedSlot } from '../../src/kasmina/seed-slot.js';
import { thrownBy } from '../support/thrown.js';
import { useTensorBackend } from './fixtures/hooks.js';

const catalog = new KarnCatalog();
const dense = create(SeedSiteDescriptorSchema, { siteId: 'hidden1', kind: SeedSiteKind.DENSE, shape: [8] });
const conv = create(SeedSiteDescriptorSchema, { siteId: 'conv1', kind: SeedSiteKind.CONV, shape: [4, 4, 6] });
const op = create(CommandSeedOperationSchema, { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'BP009', siteId: 'x' });

/** Feeds the module the raw activation: the seam a broken slot would leak through. */
class LeakySlot extends SeedSlot {
  protected override moduleInput(activation: tf.Tensor): tf.Tensor {
    return activation;
  }
}

useTensorBackend({ leakCheck: true });

function slotAt(site: SeedSiteDescriptor, blueprintId: string, plan: BlendPlan, scope: string, leaky = false): SeedSlot {
  const module = catalog.build(blueprintId, site, { seed: 3, scope });
  const options = { seedId: scope, siteId: site.siteId, site, module, plan };
  return leaky ? new LeakySlot(options) : new SeedSlot(options);
}

describe('checkIsolation', () => {
  const cases: ReadonlyArray<[string, SeedSiteDescriptor, string, () => BlendPlan, 'isolated' | 'blended' | 'paused', number]> = [
    ['isolated dense', dense, 'BP009', () => DEFAULT_BLEND_PLAN, 'isolated', 0],
    ['convex dense at 0.4', dense, 'BP009', () => DEFAULT_BLEND_PLAN, 'blended', 0.4],
    ['convex at alpha 1', dense, 'BP009', () => DEFAULT_BLEND_PLAN, 'blended', 1],
    ['residual dense', dense, 'BP009', () => resolveBlendPlan({ ...op, blendMode: BlendMode.RESIDUAL }, undefined, dense), 'blended', 0.7],
    [
      'channel conv',
      conv,
      'BP016',
      () => resolveBlendPlan(op, create(BlendConfigSchema, { mode: BlendMode.CHANNEL, alphaVec: [0.1, 0.5, 0.9] }), conv),
      'blended',
      0.8,
    ],
    [
      'confidence dense',
      dense,
      'BP009',
      () => resolveBlendPlan(op, create(BlendConfigSchema, { mode: BlendMode.CONFIDENCE, policyLogits: [1, 0] }), dense),
      'blended',
      0.6,
    ],
    ['paused', dense, 'BP009', () => DEFAULT_BLEND_PLAN, 'paused', 0.5],
  ];

  for (const [name, site, blueprintId, plan, phase, alpha] of cases) {
    it(`passes a correct slot (${name}) and leaves no tensors behind`, () => {
      const slot = slotAt(site, blueprintId, plan(), `iso-${name.replace(/\W/g, '-')}`);
      try {
        slot.phase = phase;
        slot.alpha = alpha;
        const before = tf.memory().numTensors;
        const check = checkIsolation(slot, seededRng(11));
        expect(tf.memory().numTensors).toBe(before);
        expect(check.phase).toBe(phase);
        expect(check.tolerance).toBe(ISOLATION_TOLERANCE);
        expect(check.relativeLeak).toBeLessThanOrEqual(ISOLATION_TOLERANCE);
        expect(check.passed).toBe(true);
      } finally {
        slot.dispose();
      }
    });
  }

  for (const phase of ['isolated', 'blended'] as const) {
    it(`fails a slot whose module sees the activation without stopGradient (${phase})`, () => {
      const slot = slotAt(dense, 'BP009', DEFAULT_BLEND_PLAN, `leaky-${phase}`, true);
      try {
        slot.phase = phase;
        slot.alpha = 0.5;
        const before = tf.memory().numTensors;
        const check = checkIsolation(slot, seededRng(12), 3);
        expect(tf.memory().numTensors).toBe(before);
        expect(check.passed).toBe(false);
        expect(check.leakNorm).toBeGreaterThan(0);
        expect(check.relativeLeak).toBeGreaterThan(1e-3);
      } finally {
        slot.dispose();
      }
    });
  }

  it('rejects a batch below 1', () => {
    const slot = slotAt(dense, 'BP009', DEFAULT_BLEND_PLAN, 'iso-batch');
    try {
      thrownBy(() => checkIsolation(slot, seededRng(1), 0), ErrorCode.INVALID_ARGUMENT);
    } finally {
      slot.dispose();
    }
  });
});

describe('IsolationMonitor', () => {
  it('counts per seed and in total, and escalates once the breaker opens on the third violation', () => {
    const monitor = new IsolationMonitor({ clock: new FakeClock() });
    const first = monitor.recordViolation('seed-a', 'shared parameter');
    expect(first).toMatchObject({ seedId: 'seed-a', seedViolations: 1, totalViolations: 1, breakerOpen: false, escalate: false });
    expect(monitor.recordViolation('seed-b', 'leak').escalate).toBe(false);
    const third = monitor.recordViolation('seed-a', 'leak');
    expect(third).toMatchObject({ seedViolations: 2, totalViolations: 3, breakerOpen: true, escalate: true });
    expect(monitor.breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_OPEN);
    expect(monitor.violations('seed-a')).toBe(2);
    expect(monitor.violations('seed-c')).toBe(0);
  });

  it('half-opens after the open window and closes after two passes (the prototype never half-opened)', () => {
    const clock = new FakeClock();
    const monitor = new IsolationMonitor({ clock });
    for (let i = 0; i < 3; i += 1) monitor.recordViolation('seed-a', 'leak');
    monitor.recordPass('seed-a');
    expect(monitor.breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_OPEN);
    clock.advance(30_000);
    monitor.recordPass('seed-a');
    expect(monitor.breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN);
    monitor.recordPass('seed-a');
    expect(monitor.breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_CLOSED);
    expect(monitor.recordViolation('seed-a', 'leak').escalate).toBe(false);
  });

  it('re-opens at once on a violation while half-open', () => {
    const clock = new FakeClock();
    const monitor = new IsolationMonitor({ clock });
    for (let i = 0; i < 3; i += 1) monitor.recordViolation('seed-a', 'leak');
    clock.advance(30_000);
    monitor.recordPass('seed-a');
    expect(monitor.breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_HALF_OPEN);
    expect(monitor.recordViolation('seed-b', 'leak')).toMatchObject({ breakerOpen: true, escalate: true });
  });

  it('clears a seed from the total, and reset closes the breaker', () => {
    const monitor = new IsolationMonitor({ clock: new FakeClock() });
    for (let i = 0; i < 3; i += 1) monitor.recordViolation('seed-a', 'leak');
    monitor.recordViolation('seed-b', 'leak');
    monitor.clearSeed('seed-a');
    expect(monitor.total).toBe(1);
    expect(monitor.recordedTotal).toBe(4);
    monitor.reset();
    expect(monitor.total).toBe(0);
    expect(monitor.recordedTotal).toBe(0);
    expect(monitor.breakerState).toBe(CircuitBreakerState.CIRCUIT_STATE_CLOSED);
    expect(monitor.breakerSnapshot().name).toBe('kasmina.isolation');
  });

  it('rejects an empty seed id', () => {
    const monitor = new IsolationMonitor();
    thrownBy(() => monitor.recordViolation('', 'leak'), ErrorCode.INVALID_ARGUMENT);
  });
});
