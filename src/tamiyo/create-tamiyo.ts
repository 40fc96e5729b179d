/**
 * Tamiyo builds itself: {@link createTamiyo} turns the `tamiyo` and `security` settings and
 * the collaborators other subsystems own (host descriptor, candidates from Urza, key ring,
 * telemetry, bus) into a {@link TamiyoService} with its policy, risk engine, signed command
 * builder and field reports, and one `close()` for what it opened.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { closeOnce, DependencyGuard, runCleanup, type Clock, type EsperSettings, type TelemetrySink } from '../core/index.js';
import type { HostDescriptor } from '../leyline/index.js';
import type { Bus } from '../oona/index.js';
import { FileNonceStore, HmacSigner, NonceLedger, type KeyRing } from '../security/index.js';
import { seededRng } from '../tensor/index.js';
import { createBsdsVerifier } from '../urza/index.js';
import type { BlueprintCandidate } from './candidates.js';
import { CommandBuilder } from './command-builder.js';
import { FieldReportPublisher } from './field-report-publisher.js';
import { FieldReportStore } from './field-report-store.js';
import { FieldReportBuilder } from './field-reports.js';
import { gnnConfigFor } from './gnn-config.js';
import { GnnPolicy, type SampledDecision } from './gnn-policy.js';
import { TamiyoGnn } from './gnn.js';
import { runGraphBuilder } from './graph-builder.js';
import { GRAPH_RELATIONS } from './graph-relations.js';
import type { HeuristicPolicyOptions } from './heuristic-options.js';
import { HeuristicPolicy } from './heuristic-policy.js';
import type { TamiyoPolicy } from './policy.js';
import { PolicyUpdateListener } from './policy-update-listener.js';
import { PolicyUpdateVerifier } from './policy-update-verifier.js';
import { architectureOf } from './policy-weights.js';
import { openLearnedPolicy } from './learned-policy.js';
import { RiskEngine } from './risk-engine.js';
import { TAMIYO_CLOSE_REASON, TamiyoService } from './service.js';

/** Policies {@link createTamiyo} builds by name. */
export const TAMIYO_POLICY_NAMES = ['heuristic', 'gnn'] as const;

/** A policy {@link createTamiyo} builds by name. */
export type TamiyoPolicyName = (typeof TAMIYO_POLICY_NAMES)[number];

/**
 * A learned policy named by its file (what `esper learn` writes): `learned:<path>` draws its
 * decisions, `greedy:<path>` takes its most likely choice at each (the evaluation's `learned`
 * and `greedy` arms).
 */
export type LearnedPolicyRef = `learned:${string}` | `greedy:${string}`;

/** How each {@link LearnedPolicyRef} prefix decides. */
const LEARNED_POLICY_PREFIXES = [
  ['learned:', 'sample'],
  ['greedy:', 'mode'],
] as const;

/** The file and the decision rule `spec` names, or undefined when it names no learned policy. */
export function learnedPolicyOf(spec: string): { readonly file: string; readonly decide: 'sample' | 'mode' } | undefined {
  for (const [prefix, decide] of LEARNED_POLICY_PREFIXES) {
    if (spec.startsWith(prefix) && spec.length > prefix.length) return { file: spec.slice(prefix.length), decide };
  }
  return undefined;
}

/** A policy by name or learned file: what the CLI and Weatherlight pass. */
export type TamiyoPolicySpec = TamiyoPolicyName | LearnedPolicyRef;

/** Whether `spec` names a learned policy file. */
export function isLearnedPolicyRef(spec: string): spec is LearnedPolicyRef {
  return learnedPolicyOf(spec) !== undefined;
}

/** Tamiyo's settings: the `tamiyo` section, `security` for the command signer, `core` for the latency-budget mode. */
export type TamiyoSettings = Pick<EsperSettings, 'tamiyo' | 'security' | 'core'>;

/**
 * Inference budget of the GNN policy at the least, in ms: a forward pass takes 4.5–6 ms at
 * p50 on wasm, so a budget below this would turn every decision into a timeout.
 */
const GNN_MIN_STEP_BUDGET_MS = 50;

/** Offset of the GNN's initialisation seed from the run seed (so it does not repeat the host's draws). */
const GNN_SEED_OFFSET = 17;

/** Offset of a sampling GNN policy's draws from the run seed. */
const GNN_SAMPLING_SEED_OFFSET = 29;

/** Version of the GNN every run and Simic draw from `tamiyo.gnnInitSeed`. */
export function initialPolicyVersion(initSeed: number): string {
  return `tamiyo-gnn-init-${initSeed}`;
}

/**
 * The GNN policy's initial network drawn from `initSeed` with the default architecture:
 * what every run's Tamiyo starts from when `tamiyo.gnnInitSeed` is set, and what Simic
 * trains first. The caller owns (and disposes) the network.
 */
export function initialPolicyNetwork(initSeed: number): { readonly gnn: TamiyoGnn; readonly version: string } {
  return { gnn: new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(initSeed)), version: initialPolicyVersion(initSeed) };
}

/** What {@link createTamiyo} is given; none of it is closed by Tamiyo. */
export interface TamiyoDeps {
  /**
   * The policy: `heuristic` (`HeuristicPolicy` with {@link heuristic}), `gnn` (an untrained
   * `GnnPolicy` seeded from {@link seed}), `learned:<file>` (Simic's policy from its file,
   * sampling with draws seeded from {@link seed}: `openLearnedPolicy`), `greedy:<file>` (the
   * same, taking its most likely choice at each decision), or a policy object,
   * which the service then owns.
   */
  readonly policy: TamiyoPolicySpec | TamiyoPolicy;
  /** Options of the `heuristic` policy. @default the policy's own defaults */
  readonly heuristic?: HeuristicPolicyOptions;
  /** The run seed; the `gnn` policy's weights are drawn from it. @default 0 */
  readonly seed?: number;
  readonly host: HostDescriptor;
  /** Blueprints the policy may germinate (their sheets are verified with {@link keyRing}). */
  readonly candidates: readonly BlueprintCandidate[];
  /** Signs every command and verifies every candidate's safety data sheet. */
  readonly keyRing: KeyRing;
  readonly trainingRunId: string;
  readonly telemetry: TelemetrySink;
  /**
   * Field reports: stored in a record log at `walPath` (its directory created; opened and closed by Tamiyo) and,
   * with a bus, published on it after each epoch. @default none kept
   */
  readonly fieldReports?: { readonly walPath: string; readonly bus?: Pick<Bus, 'publish'> };
  /**
   * Take policy updates (Simic's) from `bus` for a `gnn` policy: each is verified (signature,
   * freshness, a nonce never seen — remembered in `nonceFile` across restarts —, architecture,
   * checksum, size, validation) and goes live at the next decision. Ignored for other policies.
   * @default no updates taken
   */
  readonly policyUpdates?: { readonly bus: Bus; readonly nonceFile: string };
  /** @default systemClock */
  readonly clock?: Clock;
}

/** A built Tamiyo. */
export interface Tamiyo extends AsyncDisposable {
  /** Tolaria's controller. */
  readonly service: TamiyoService;
  /** The field-report store, when field reports are kept. */
  readonly fieldReports: FieldReportStore | undefined;
  /**
   * Closes the service (open field-report windows aborted with `reason`, stored and
   * published; the policy freed), then the field-report store. Every step runs even if one
   * fails. Idempotent (the first call's promise).
   */
  close(reason?: string): Promise<void>;
}

/**
 * Builds Tamiyo: the policy, the risk engine (`tamiyo.conservativeMode`), the command
 * builder signing with the key ring (`security.freshnessWindowMs`) under a dependency guard,
 * the field-report builder, store and publisher (`tamiyo.fieldReportMaxRetries`), and the
 * service with the inference budget `tamiyo.stepTimeoutMs`. The `gnn` policy starts from
 * `tamiyo.gnnInitSeed`'s network when set, and samples its decisions (seeded from the run
 * seed; field reports then carry their decision context) under `tamiyo.gnnSampling`.
 * @throws EsperError INVALID_ARGUMENT for options a part refuses (blank run id or site ids,
 *   duplicate candidates); the field-report store's errors
 */
export async function createTamiyo(settings: TamiyoSettings, deps: TamiyoDeps): Promise<Tamiyo> {
  const { telemetry, trainingRunId } = deps;
  const sampled = { last: undefined as SampledDecision | undefined };
  const policy = await buildPolicy(settings, deps, (decision) => {
    sampled.last = decision;
  });
  const takeSampledDecision = (): SampledDecision | undefined => {
    const decision = sampled.last;
    sampled.last = undefined;
    return decision;
  };
  let store: FieldReportStore | undefined;
  try {
    const reports = deps.fieldReports;
    if (reports !== undefined) {
      await mkdir(path.dirname(reports.walPath), { recursive: true });
      store = await FieldReportStore.open(reports.walPath, { telemetry });
    }
    const service = new TamiyoService({
      policy,
      host: deps.host,
      candidates: deps.candidates,
      bsdsVerifier: createBsdsVerifier(deps.keyRing),
      risk: new RiskEngine({ startConservative: settings.tamiyo.conservativeMode, latencyBudgets: settings.core.latencyBudgets }),
      commands: new CommandBuilder({
        trainingRunId,
        signer: new HmacSigner(deps.keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }),
        guard: new DependencyGuard({ subsystem: 'tamiyo', sink: telemetry, trainingRunId }),
      }),
      telemetry,
      trainingRunId,
      stepBudgetMs: Math.max(settings.tamiyo.stepTimeoutMs, policy.name === 'gnn' ? GNN_MIN_STEP_BUDGET_MS : 0),
      ...(reports === undefined || store === undefined
        ? {}
        : {
            fieldReports: {
              builder: new FieldReportBuilder({ trainingRunId, policyVersion: () => policy.version, telemetry }),
              store,
              ...(reports.bus === undefined
                ? {}
                : {
                    publisher: new FieldReportPublisher({
                      store,
                      bus: reports.bus,
                      telemetry,
                      trainingRunId,
                      maxRetries: settings.tamiyo.fieldReportMaxRetries,
                    }),
                  }),
            },
          }),
      ...(policy instanceof GnnPolicy ? { coverage: () => policy.lastCoverage, takeSampledDecision } : {}),
      ...(deps.clock === undefined ? {} : { clock: deps.clock }),
    });
    const opened = store;
    let updates: { close(): Promise<void> } | undefined;
    if (policy instanceof GnnPolicy && deps.policyUpdates !== undefined) {
      try {
        updates = await listenForUpdates(settings, deps, policy, service);
      } catch (error) {
        await service.close('run_failed').catch(() => undefined);
        throw error;
      }
    }
    const close = closeOnce((reason: string = TAMIYO_CLOSE_REASON) =>
      runCleanup('tamiyo', [
        updates !== undefined && (() => updates.close()),
        () => service.close(reason),
        opened !== undefined && (() => opened.close()),
      ]),
    );
    return { service, fieldReports: store, close, [Symbol.asyncDispose]: () => close() };
  } catch (error) {
    const opened = store;
    // The construction failure must stay visible; the cleanup's own failure would hide it.
    await runCleanup('tamiyo', [opened !== undefined && (() => opened.close()), () => policy.dispose?.()]).catch(() => undefined);
    throw error;
  }
}

/** The policy-update listener of a GNN policy and its durable nonce ledger, started. */
async function listenForUpdates(
  settings: TamiyoSettings,
  deps: TamiyoDeps,
  policy: GnnPolicy,
  service: TamiyoService,
): Promise<{ close(): Promise<void> }> {
  const { bus, nonceFile } = deps.policyUpdates as NonNullable<TamiyoDeps['policyUpdates']>;
  const ledger = await NonceLedger.open({
    store: await FileNonceStore.open(nonceFile),
    ttlSeconds: settings.security.nonceTtlSeconds,
    maxEntries: settings.security.nonceMaxEntries,
    sink: deps.telemetry,
    source: 'tamiyo',
  });
  const listener = new PolicyUpdateListener({
    bus,
    service,
    verifier: new PolicyUpdateVerifier({
      signer: new HmacSigner(deps.keyRing, { freshnessWindowMs: settings.security.freshnessWindowMs }),
      ledger,
      telemetry: deps.telemetry,
      expectedArchitecture: architectureOf(policy.gnn.config),
      maxFreshnessWindowMs: settings.security.freshnessWindowMs,
      futureSkewMs: settings.security.futureSkewMs,
    }),
    // Every Tamiyo of the run takes every update.
    group: `tamiyo-${deps.trainingRunId}-policy`,
  });
  try {
    await listener.start();
  } catch (error) {
    await ledger.close().catch(() => undefined);
    throw error;
  }
  return { close: () => runCleanup('tamiyo policy updates', [() => listener.close(), () => ledger.close()]) };
}

async function buildPolicy(
  settings: TamiyoSettings,
  deps: TamiyoDeps,
  onDecision: (decision: SampledDecision) => void,
): Promise<TamiyoPolicy> {
  if (typeof deps.policy !== 'string') return deps.policy;
  const learned = learnedPolicyOf(deps.policy);
  if (learned !== undefined) return openLearnedPolicy(learned.file, { seed: deps.seed ?? 0, decide: learned.decide, onDecision });
  if (deps.policy === 'heuristic') return new HeuristicPolicy(deps.heuristic ?? {});
  const runSeed = deps.seed ?? 0;
  const initSeed = settings.tamiyo.gnnInitSeed;
  const { gnn, version } =
    initSeed === undefined
      ? { gnn: new TamiyoGnn(gnnConfigFor(GRAPH_RELATIONS), seededRng(runSeed + GNN_SEED_OFFSET)), version: 'tamiyo-gnn-untrained' }
      : initialPolicyNetwork(initSeed);
  return new GnnPolicy({
    gnn,
    builder: runGraphBuilder(),
    version,
    ...(settings.tamiyo.gnnSampling ? { sampling: { rng: seededRng(runSeed + GNN_SAMPLING_SEED_OFFSET), onDecision } } : {}),
  });
}
