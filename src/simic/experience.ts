/**
 * What Simic learns from: decisions of a sampling GNN policy (`SampledDecision`: the graph
 * it read, its choice, the choice's log-probability and the value estimate) with the reward
 * that followed, grouped per episode (one training run).
 */
import type { PolicyChoice, PolicyGraph } from '../tamiyo/index.js';

/** One decision and the reward received after it. */
export interface Transition {
  readonly graph: PolicyGraph;
  readonly choice: PolicyChoice;
  /** log π_behaviour(choice | graph) when it was made. */
  readonly logProb: number;
  /** The value head's estimate when it was made. */
  readonly value: number;
  /** Reward after this decision (an episode's outcome arrives on its last decision). */
  readonly reward: number;
}

/** One episode's decisions, in order; the episode ended after the last. */
export type Trajectory = readonly Transition[];

/**
 * Advantages and returns by generalised advantage estimation (Schulman et al. 2016) over
 * one episode: `δ_t = r_t + γ·V_{t+1} − V_t` (no bootstrap after the last decision: the
 * episode ended), `A_t = Σ_k (γλ)^k δ_{t+k}`, return `A_t + V_t`.
 */
export function generalisedAdvantages(
  trajectory: Trajectory,
  gamma: number,
  lambda: number,
): { readonly advantages: Float64Array; readonly returns: Float64Array } {
  const n = trajectory.length;
  const advantages = new Float64Array(n);
  const returns = new Float64Array(n);
  let next = 0;
  for (let t = n - 1; t >= 0; t -= 1) {
    const step = trajectory[t] as Transition;
    const nextValue = t === n - 1 ? 0 : (trajectory[t + 1] as Transition).value;
    const delta = step.reward + gamma * nextValue - step.value;
    next = delta + gamma * lambda * next;
    advantages[t] = next;
    returns[t] = next + step.value;
  }
  return { advantages, returns };
}
