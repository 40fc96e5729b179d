/** PolicySlot: the live GNN and at most one staged replacement, swapped between proposals. */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, MemoryTelemetrySink } from '../../src/core/index.js';
import { gnnConfigFor } from '../../src/tamiyo/gnn-config.js';
import { TamiyoGnn } from '../../src/tamiyo/gnn.js';
import { PolicyUpdateEvent, PolicyUpdateMetric } from '../../src/tamiyo/names.js';
import { PolicySlot } from '../../src/tamiyo/policy-slot.js';
import { initTensorBackend, seededRng, tf } from '../../src/tensor/index.js';
import { TEST_RELATIONS } from './fixtures/graphs.js';
import { errorOf } from './fixtures/errors.js';

const CONFIG = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 8, heads: 2 });
const OTHER_CONFIG = gnnConfigFor(TEST_RELATIONS, { hidden: 16, gatHidden: 8, heads: 2 });
let tensorsAtStart = 0;
const slots: PolicySlot[] = [];

beforeAll(async () => {
  await initTensorBackend();
});

afterEach(() => {
  for (const slot of slots.splice(0)) slot.dispose();
  expect(tf.memory().numTensors).toBe(tensorsAtStart);
});

function slot(): { slot: PolicySlot; telemetry: MemoryTelemetrySink } {
  tensorsAtStart = tf.memory().numTensors;
  const telemetry = new MemoryTelemetrySink();
  const made = new PolicySlot({ gnn: new TamiyoGnn(CONFIG, seededRng(1)), version: 'v1' }, { telemetry });
  slots.push(made);
  return { slot: made, telemetry };
}

describe('PolicySlot', () => {
  it('keeps only the newest staged policy, swaps it in on request and frees what it replaces', () => {
    const { slot: s, telemetry } = slot();
    const live = s.current.gnn;
    const v2 = new TamiyoGnn(CONFIG, seededRng(2));
    const v3 = new TamiyoGnn(CONFIG, seededRng(3));
    s.stage({ gnn: v2, version: 'v2' });
    s.stage({ gnn: v3, version: 'v3' });
    expect(v2.disposed).toBe(true);
    expect(s.pendingVersion).toBe('v3');
    expect(s.current.version).toBe('v1');
    expect(s.swapIfPending()).toEqual({ swapped: true, from: 'v1', to: 'v3' });
    expect(live.disposed).toBe(true);
    expect(s.current.gnn).toBe(v3);
    expect(s.swapIfPending()).toEqual({ swapped: false, from: 'v3', to: 'v3' });
    expect(s.snapshot()).toMatchObject({ swapsTotal: 1, supersededTotal: 1, pendingVersion: undefined });
    expect(s.metrics()).toContainEqual({ name: PolicyUpdateMetric.SUPERSEDED_TOTAL, value: 1, unit: 'count' });
    expect(telemetry.events(PolicyUpdateEvent.APPLIED)[0]?.attributes).toEqual({ from: 'v1', to: 'v3' });
  });

  it('refuses a disposed, already-held or differently shaped policy, and any call after dispose', () => {
    const { slot: s } = slot();
    const disposed = new TamiyoGnn(CONFIG, seededRng(5));
    disposed.dispose();
    expect(
      isEsperError(
        errorOf(() => s.stage({ gnn: disposed, version: 'v' })),
        ErrorCode.INVALID_ARGUMENT,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => s.stage({ gnn: s.current.gnn, version: 'v' })),
        ErrorCode.INVALID_ARGUMENT,
      ),
    ).toBe(true);
    const other = new TamiyoGnn(OTHER_CONFIG, seededRng(5));
    try {
      expect(
        isEsperError(
          errorOf(() => s.stage({ gnn: other, version: 'v' })),
          ErrorCode.TAMIYO_POLICY_INVALID,
        ),
      ).toBe(true);
      expect(other.disposed).toBe(false); // ownership stays with the caller on a throw
    } finally {
      other.dispose();
    }
    const staged = new TamiyoGnn(CONFIG, seededRng(6));
    s.stage({ gnn: staged, version: 'v6' });
    const live = s.current.gnn;
    s.dispose();
    s.dispose();
    expect(live.disposed && staged.disposed).toBe(true);
    expect(
      isEsperError(
        errorOf(() => s.swapIfPending()),
        ErrorCode.INVALID_STATE,
      ),
    ).toBe(true);
    expect(
      isEsperError(
        errorOf(() => s.current),
        ErrorCode.INVALID_STATE,
      ),
    ).toBe(true);
  });
});
