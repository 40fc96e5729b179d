/**
 * A policy that decides as another one (the heuristic) and records what it did the way a
 * learned policy's decisions are recorded, so that Simic can clone it (behaviour cloning,
 * `esper learn --warm-start`).
 *
 * A learned policy of cadence k builds its graph at epoch ends 0, k, 2k, … only, and its
 * builder's feature normaliser is a running average updated on every build. So this
 * wrapper builds its graphs at the same epoch ends with the same kind of builder: the
 * features a clone learns from are distributed as the ones it will see when it plays.
 * Each graph is labelled with the first decision the inner policy made from that epoch
 * end until the next one, as a choice on that graph ({@link choiceOfDecision}): the
 * heuristic acts at every epoch end, the clone only at every k-th, so it learns to do
 * at the start of a window what the heuristic did within it. A window in which the inner
 * policy only waited, or did something a sampled choice cannot express (or the graph does
 * not allow, such as a cull of a seed germinated after the window's graph was built), is
 * labelled WAIT.
 */
import { optionChecks } from '../core/index.js';
import { DecisionKind, type ProposedDecision } from './decision.js';
import { PolicyAction } from './gnn-config.js';
import type { SampledDecision } from './gnn-policy.js';
import { choiceMaskOf, type PolicyChoice } from './gnn-sampling.js';
import type { GraphBuilder } from './graph-builder.js';
import type { PolicyGraph } from './graph-types.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';

/** Options of {@link DemonstratingPolicy}. */
export interface DemonstratingPolicyOptions {
  /** The policy that decides (its proposals are returned unchanged). */
  readonly inner: TamiyoPolicy;
  /** Builds the graphs (a fresh builder per run, as a learned policy's). */
  readonly builder: GraphBuilder;
  /** The cadence of the policy that will learn from the demonstrations. @default 1 */
  readonly everyEpochs?: number;
  /** Called with each demonstration once its window has closed, in order. */
  readonly onDemonstration: (demonstration: SampledDecision) => void;
}

/**
 * `decision` as a choice on `graph`, when a sampling GNN policy could have made it there:
 * a germinate of a site and blueprint the graph pairs, or a cull of a seed it may cull.
 * Undefined for anything else (a wait, an optimizer or breaker decision, a pair or seed the
 * graph does not have or allow).
 */
export function choiceOfDecision(decision: ProposedDecision, graph: PolicyGraph): PolicyChoice | undefined {
  const mask = choiceMaskOf(graph);
  if (decision.kind === DecisionKind.GERMINATE) {
    const siteIndex = graph.nodes.site.ids.indexOf(decision.siteId);
    const blueprintIndex = graph.nodes.blueprint.ids.indexOf(decision.blueprintId);
    if (siteIndex < 0 || blueprintIndex < 0 || mask.pairs[siteIndex * mask.blueprints + blueprintIndex] !== 1) return undefined;
    return { action: PolicyAction.GERMINATE, siteIndex, blueprintIndex };
  }
  if (decision.kind === DecisionKind.CULL) {
    const seedIndex = graph.nodes.seed.ids.indexOf(decision.seedId);
    if (seedIndex < 0 || mask.seeds[seedIndex] !== 1) return undefined;
    return { action: PolicyAction.CULL, seedIndex };
  }
  return undefined;
}

/** The open window: its graph, and its label once the inner policy acted. */
interface Window {
  readonly graph: PolicyGraph;
  readonly step: number;
  readonly epoch: number;
  choice: PolicyChoice | undefined;
}

/** Decides as `inner` and records demonstrations; see the module comment. */
export class DemonstratingPolicy implements TamiyoPolicy {
  readonly #o: DemonstratingPolicyOptions;
  readonly #every: number;
  #window: Window | undefined;

  /** @throws EsperError INVALID_ARGUMENT naming a bad option */
  constructor(options: DemonstratingPolicyOptions) {
    this.#every = optionChecks('DemonstratingPolicyOptions').integer('everyEpochs', options.everyEpochs ?? 1, { min: 1, max: 1_000_000 });
    this.#o = options;
  }

  get name(): string {
    return this.#o.inner.name;
  }

  get version(): string {
    return this.#o.inner.version;
  }

  get stepDecisions(): boolean | undefined {
    return this.#o.inner.stepDecisions;
  }

  propose(context: PolicyContext): PolicyProposal {
    const proposal = this.#o.inner.propose(context);
    if (context.epochBoundary && context.packet.currentEpoch % this.#every === 0) {
      this.flush();
      const graph = this.#o.builder.build({ packet: context.packet, host: context.host, blueprints: context.candidates });
      this.#window = { graph, step: Number(context.packet.globalStep), epoch: context.packet.currentEpoch, choice: undefined };
    }
    const window = this.#window;
    if (window !== undefined && window.choice === undefined) window.choice = choiceOfDecision(proposal.decision, window.graph);
    return proposal;
  }

  /** Records the open window's demonstration (call once the run has ended); idempotent. */
  flush(): void {
    const window = this.#window;
    if (window === undefined) return;
    this.#window = undefined;
    this.#o.onDemonstration({
      graph: window.graph,
      choice: window.choice ?? { action: PolicyAction.WAIT },
      // Not drawn from a network: behaviour cloning reads the choice only.
      logProb: 0,
      value: 0,
      policyVersion: this.version,
      step: window.step,
      epoch: window.epoch,
    });
  }

  snapshot(): unknown {
    return this.#o.inner.snapshot?.();
  }

  dispose(): void {
    this.#o.inner.dispose?.();
  }
}
