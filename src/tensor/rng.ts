/**
 * Deterministic pseudo-random numbers for Esper: one small, well-known generator so that
 * the same seed gives the same initial weights and the same data order on every run
 * (issue "Deterministic seeding"; acceptance: two runs with one seed give bit-identical
 * losses).
 *
 * The generator is **xoshiro128\*\*** (Blackman & Vigna, 2018): 128 bits of state, period
 * 2¹²⁸−1, passes BigCrush, and needs only 32-bit integer arithmetic, which JS does exactly
 * (`Math.imul`, `>>>`). Seeds are expanded into the state with **splitmix32**, so nearby
 * seeds (1, 2, 3…) give unrelated streams and the all-zero state cannot occur.
 *
 * Why not `tf.randomUniform(…, seed)`: each tfjs call reseeds its own generator, so a
 * training run would need a seed per call; one explicit stream whose 4-word state can be
 * checkpointed is simpler to reason about and to resume (Tolaria checkpoints the RNG).
 *
 * Floats are derived from the integer stream with plain arithmetic; normals use
 * Box–Muller (`Math.log`, `Math.cos`), which are deterministic for a given Node build —
 * bit-identical across runs on one machine, not guaranteed across JS engines.
 */
import { optionChecks, type OptionChecks } from '../core/index.js';

/** The generator's state: four uint32 words (never all zero). */
export type RngState = readonly [number, number, number, number];

/** A deterministic random stream. */
export interface Rng {
  /** Next uniform uint32 in [0, 2³²). */
  nextUint32(): number;
  /** Next uniform float in [0, 1) with 32 random bits. */
  nextFloat(): number;
  /** Next uniform integer in [0, maxExclusive) without modulo bias (1 ≤ maxExclusive ≤ 2³²). */
  nextInt(maxExclusive: number): number;
  /** Next standard normal sample (Box–Muller; consumes two uint32 pairs' worth of floats). */
  nextNormal(): number;
  /** Shuffles `items` in place (Fisher–Yates) and returns it. */
  shuffle<T>(items: T[]): T[];
  /** A permutation of `0 … n−1`. */
  permutation(n: number): Int32Array;
  /**
   * An independent stream derived from this stream's current state and `stream` (e.g. 1
   * for weight init, 2 for data order), without advancing this stream: forks taken at the
   * same point with the same id are identical.
   */
  fork(stream: number): Rng;
  /** A copy of the current state, for checkpoints. */
  getState(): RngState;
}

const UINT32 = 2 ** 32;

const check: OptionChecks = optionChecks('Rng');

/** splitmix32 step: returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

function expandSeed(seedLow: number, seedHigh: number): [number, number, number, number] {
  let s = seedLow ^ Math.imul(seedHigh, 0x27d4eb2d);
  const words: number[] = [];
  for (let i = 0; i < 4; i += 1) {
    const [next, out] = splitmix32(s);
    s = next;
    words.push(out);
  }
  const state = words as [number, number, number, number];
  if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1;
  return state;
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** xoshiro128** implementation of {@link Rng}. */
class Xoshiro128StarStar implements Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(state: RngState) {
    [this.s0, this.s1, this.s2, this.s3] = state.map((w) => w | 0) as [number, number, number, number];
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  nextFloat(): number {
    return this.nextUint32() / UINT32;
  }

  nextInt(maxExclusive: number): number {
    check.integer('maxExclusive', maxExclusive, { min: 1, max: UINT32 });
    // Rejection sampling: draws at or above the largest multiple of maxExclusive are biased.
    const limit = UINT32 - (UINT32 % maxExclusive);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % maxExclusive;
    }
  }

  nextNormal(): number {
    // 1 − u keeps the log argument in (0, 1].
    const u1 = 1 - this.nextFloat();
    const u2 = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i -= 1) {
      const j = this.nextInt(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i += 1) out[i] = i;
    for (let i = n - 1; i > 0; i -= 1) {
      const j = this.nextInt(i + 1);
      const tmp = out[i] as number;
      out[i] = out[j] as number;
      out[j] = tmp;
    }
    return out;
  }

  fork(stream: number): Rng {
    assertSeed(stream, 'stream');
    // Mix the current state words with the stream id; the parent is not advanced.
    const low = (this.s0 ^ Math.imul(this.s2, 0x9e3779b1) ^ (stream >>> 0)) >>> 0;
    const high = (this.s1 ^ Math.imul(this.s3, 0x85ebca77) ^ Math.floor(stream / UINT32)) >>> 0;
    return new Xoshiro128StarStar(expandSeed(low, high));
  }

  getState(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }
}

function assertSeed(seed: number, field: string): void {
  check.integer(field, seed, { min: 0 });
}

/**
 * A xoshiro128** stream seeded from `seed` (a non-negative safe integer) through
 * splitmix32. Same seed → same stream.
 */
export function seededRng(seed: number): Rng {
  assertSeed(seed, 'seed');
  return new Xoshiro128StarStar(expandSeed(seed >>> 0, Math.floor(seed / UINT32) >>> 0));
}

/** Resumes a stream from a checkpointed {@link RngState}. */
export function rngFromState(state: RngState): Rng {
  const valid =
    Array.isArray(state) &&
    state.length === 4 &&
    state.every((w) => Number.isInteger(w) && w >= 0 && w < UINT32) &&
    state.some((w) => w !== 0);
  if (!valid) check.fail('state', 'four uint32 words, not all zero', state);
  return new Xoshiro128StarStar(state);
}
