/**
 * Simic as a service of its own (`esper serve simic`, or beside the fleet in `esper up
 * --learn`): the fleet's field reports in from the bus, PPO updates of the policy every run's
 * Tamiyo runs, gated updates out on the bus.
 *
 * Simic and every run's Tamiyo start from one network, drawn from `tamiyo.gnnInitSeed` with
 * the default architecture (version `tamiyo-gnn-init-<seed>`), so the first field reports
 * already name the version Simic trains and no run depends on having seen a publish; the
 * setting is required here. A restarted Simic continues from `simic.policyFile`, the last
 * policy it published. The held-out evaluation is a dependency: without one every update is
 * blocked by the held-out gates and nothing is published.
 */
import { closeOnce, ErrorCode, EsperError, runCleanup, type EsperSettings, type TelemetrySink } from '../core/index.js';
import type { Bus } from '../oona/index.js';
import { HmacSigner, type KeyRing } from '../security/index.js';
import {
  PolicyPublisher,
  ReplayBuffer,
  replayBufferFromSettings,
  SimicService,
  type HeldOutEvaluator,
  type SimicGateThresholds,
  type SimicServiceStats,
  type SimicUpdate,
} from '../simic/index.js';
import { initialPolicyNetwork } from '../tamiyo/index.js';
import { seededRng } from '../tensor/index.js';

/** Policy id stamped on Simic's updates. */
export const SIMIC_POLICY_ID = 'simic-ppo';

/** What {@link openSimicServer} is given; none of it is closed by the server. */
export interface SimicServerDeps {
  readonly bus: Bus;
  /** Signs the updates (the key every Tamiyo verifies with). */
  readonly keyRing: KeyRing;
  readonly telemetry: TelemetrySink;
  /** The held-out evaluation of a candidate. @default none: every update is blocked */
  readonly evaluate?: HeldOutEvaluator;
  /** Consumer name in group `simic`. @default `simic-<pid>` */
  readonly consumer?: string;
  /** Seed of PPO's minibatch shuffles. @default 0 */
  readonly seed?: number;
  /** Called after each update. */
  readonly onUpdate?: (update: SimicUpdate) => void;
  /** The gates' thresholds. @default SIMIC_GATE_DEFAULTS (the prototype's) */
  readonly thresholds?: SimicGateThresholds;
}

/** A running Simic. */
export interface SimicServer extends AsyncDisposable {
  readonly service: SimicService;
  stats(): SimicServiceStats;
  /** Closes the service (a running update finishes), then the replay buffer. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the replay buffer (`simic.replayDir`, capacity, TTL) and starts Simic on `deps.bus`.
 * @throws EsperError INVALID_ARGUMENT when `tamiyo.gnnInitSeed` is unset; the buffer's and
 *   the policy file's errors
 */
export async function openSimicServer(settings: EsperSettings, deps: SimicServerDeps): Promise<SimicServer> {
  const initSeed = settings.tamiyo.gnnInitSeed;
  if (initSeed === undefined) {
    throw new EsperError(
      ErrorCode.INVALID_ARGUMENT,
      'Simic needs tamiyo.gnnInitSeed (ESPER_TAMIYO_GNN_INIT_SEED), the same for every Tamiyo of the fleet: it trains the network they start from',
      { details: { field: 'tamiyo.gnnInitSeed' } },
    );
  }
  const { dir, options } = replayBufferFromSettings(settings);
  const buffer = await ReplayBuffer.open(dir, options);
  const initial = initialPolicyNetwork(initSeed);
  let service: SimicService;
  try {
    service = new SimicService({
      bus: deps.bus,
      buffer,
      consumer: deps.consumer ?? `simic-${process.pid}`,
      gnn: initial.gnn,
      version: initial.version,
      publisher: new PolicyPublisher({
        bus: deps.bus,
        signer: new HmacSigner(deps.keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }),
        telemetry: deps.telemetry,
        policyId: SIMIC_POLICY_ID,
        trainingRunId: 'simic',
        ...(deps.thresholds === undefined ? {} : { thresholds: deps.thresholds }),
      }),
      ...(deps.evaluate === undefined ? {} : { evaluate: deps.evaluate }),
      reportsPerUpdate: settings.simic.reportsPerUpdate,
      policyFile: settings.simic.policyFile,
      rng: seededRng(deps.seed ?? 0),
      telemetry: deps.telemetry,
      ...(deps.onUpdate === undefined ? {} : { onUpdate: deps.onUpdate }),
    });
  } catch (error) {
    initial.gnn.dispose();
    await buffer.close().catch(() => undefined);
    throw error;
  }
  try {
    await service.start();
  } catch (error) {
    await runCleanup('simic', [() => service.close(), () => buffer.close()]).catch(() => undefined);
    throw error;
  }
  const close = closeOnce(() => runCleanup('simic', [() => service.close(), () => buffer.close()]));
  return { service, stats: () => service.stats(), close, [Symbol.asyncDispose]: () => close() };
}
