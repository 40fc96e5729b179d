/** The executor's packets: one per seed per step, then one global packet; seeds retired after their last packet. */
import { describe, expect, it } from 'vitest';
import { OperatorAction, SeedEvent, SeedMetric } from '../../src/kasmina/index.js';
import { HealthStatus, SeedLifecycleStage } from '../../src/leyline/index.js';
import { germinateCommand, seedCommand, setup } from './fixtures/setup.js';
import { useCleanups, useTensorBackend } from './fixtures/hooks.js';

useTensorBackend();
const cleanups = useCleanups();

describe('ExecutorTelemetry', () => {
  it('emits one packet per seed per step with its metrics, then the global packet; a reset seed gets its last packet and is retired', async () => {
    const { h, context } = await setup(cleanups, { settings: { embargoSteps: 1 } });
    await h.kasmina.apply(h.sign(germinateCommand('s1', 'hidden1')), context(0));
    await h.kasmina.apply(h.sign(germinateCommand('s2', 'hidden2')), context(0));
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.PAUSE, 's2')), context(0));
    await h.kasmina.advance(context(1));
    expect(h.telemetry.packets.map((p) => p.packetId)).toEqual(['kasmina-seed-s1-1', 'kasmina-seed-s2-1', 'kasmina-global-1']);
    const [s1, s2, global] = h.telemetry.packets;
    const metric = (packet: typeof s1, name: string) => packet?.metrics.find((m) => m.name === name);
    expect(metric(s1, SeedMetric.SEED_STAGE)?.value).toBe(SeedLifecycleStage.SEED_STAGE_TRAINING);
    expect(metric(s1, SeedMetric.SEED_KERNEL_ATTACHED)?.value).toBe(1);
    expect(metric(s1, SeedMetric.SEED_GRADIENT_NORM)?.attributes['seed_id']).toBe('s1');
    expect(s1?.systemHealth?.status).toBe(HealthStatus.HEALTHY);
    expect(s2?.systemHealth?.status).toBe(HealthStatus.DEGRADED);
    expect(metric(global, SeedMetric.SEEDS_ACTIVE)?.value).toBe(2);
    expect(metric(global, SeedMetric.COMMANDS_APPLIED_TOTAL)?.value).toBe(3);
    expect(global?.systemHealth?.summary).toBe('2 seeds');
    // Each seed's events arrive in its own packet, ending with its `seed_stage`.
    expect(s1?.events.at(-1)?.description).toBe(SeedEvent.SEED_STAGE);
    expect(s1?.events.some((e) => e.description === SeedEvent.KERNEL_ATTACHED)).toBe(true);

    h.telemetry.clear();
    await h.kasmina.apply(h.sign(seedCommand(OperatorAction.CULL, 's1')), context(1));
    await h.kasmina.advance(context(2)); // embargo over: RESETTING → DORMANT, last packet, retired
    expect(h.telemetry.packets.map((p) => p.packetId)).toEqual(['kasmina-seed-s1-2', 'kasmina-seed-s2-2', 'kasmina-global-2']);
    expect(h.telemetry.packets[0]?.events.some((e) => e.description === SeedEvent.SEED_RESET)).toBe(true);
    await h.kasmina.advance(context(3));
    expect(h.telemetry.packets.slice(3).map((p) => p.packetId)).toEqual(['kasmina-seed-s2-3', 'kasmina-global-3']);
    expect(h.kasmina.stats().packetsEmitted).toBe(8);
  });
});
