import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { FeatureNormaliser, NORMALISER_PRIORS } from '../../src/tamiyo/normaliser.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tamiyo-norm-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('FeatureNormaliser', () => {
  it('updates then scores: loss 0.4 from fresh priors gives mean 0.76, var 0.0954, z ≈ −1.1655 (reference §4)', () => {
    const n = new FeatureNormaliser();
    const z = n.normalise('loss', 0.4);
    expect(n.stats('loss')?.mean).toBeCloseTo(0.76, 12);
    expect(n.stats('loss')?.var).toBeCloseTo(0.0954, 12);
    expect(z).toBeCloseTo(-1.1655, 4);
    expect(n.dirty).toBe(true);
  });

  it('starts an unknown key at mean = x, var = 1, so its first score is 0', () => {
    const n = new FeatureNormaliser();
    expect(n.normalise('brand_new', 42)).toBe(0);
    expect(n.stats('brand_new')).toEqual({ mean: 42, var: 0.9 });
  });

  it('scores an absent feature as 0 without touching the running stats (departure from §4)', () => {
    const n = new FeatureNormaliser();
    const before = n.stats('loss');
    expect(n.absent('loss')).toBe(0);
    expect(n.absent('unknown_key')).toBe(0);
    expect(n.stats('loss')).toEqual(before);
    expect(n.stats('unknown_key')).toBeUndefined();
    expect(n.dirty).toBe(false);
  });

  it('treats a non-finite input as absent', () => {
    const n = new FeatureNormaliser();
    const before = n.stats('gradient_norm');
    expect(n.normalise('gradient_norm', Number.NaN)).toBe(0);
    expect(n.normalise('gradient_norm', Number.POSITIVE_INFINITY)).toBe(0);
    expect(n.stats('gradient_norm')).toEqual(before);
  });

  it('keeps the variance at or above the floor for a constant input', () => {
    const n = new FeatureNormaliser();
    for (let i = 0; i < 500; i += 1) n.normalise('seed_age', 7);
    expect(n.stats('seed_age')?.var).toBeGreaterThanOrEqual(1e-6);
    expect(Number.isFinite(n.normalise('seed_age', 7))).toBe(true);
  });

  it('rejects an alpha outside (0, 1] with INVALID_ARGUMENT naming the field', () => {
    let caught: unknown;
    try {
      new FeatureNormaliser({ alpha: 0 });
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((caught as { details: Record<string, unknown> }).details.field).toBe('alpha');
  });

  it('always returns finite scores and keeps finite stats for any input sequence (property)', () => {
    const keys = fc.constantFrom('loss', 'samples_per_s', 'new_key', 'seed_contribution');
    fc.assert(
      fc.property(fc.array(fc.tuple(keys, fc.double()), { maxLength: 60 }), (inputs) => {
        const n = new FeatureNormaliser();
        for (const [key, x] of inputs) {
          expect(Number.isFinite(n.normalise(key, x))).toBe(true);
        }
        for (const stats of Object.values(n.toJSON())) {
          expect(Number.isFinite(stats.mean) && Number.isFinite(stats.var) && stats.var >= 1e-6).toBe(true);
        }
      }),
    );
  });

  it('round-trips its stats through toJSON/fromJSON exactly, so later scores match (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { maxLength: 20 }),
        fc.double({ min: -10, max: 10, noNaN: true }),
        (xs, probe) => {
          const a = new FeatureNormaliser();
          for (const x of xs) a.normalise('loss', x);
          const b = FeatureNormaliser.fromJSON(JSON.parse(JSON.stringify(a)));
          expect(b.toJSON()).toEqual(a.toJSON());
          expect(b.normalise('loss', probe)).toBe(a.normalise('loss', probe));
        },
      ),
    );
  });

  it('saves atomically and loads back identical stats (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.constantFrom('loss', 'x', 'global_step'), fc.double({ noNaN: true })), { maxLength: 15 }),
        async (inputs) => {
          const file = path.join(dir, 'nested', 'gnn_norms.json');
          const a = new FeatureNormaliser();
          for (const [key, x] of inputs) a.normalise(key, x);
          await a.save(file);
          expect(a.dirty).toBe(false);
          const b = await FeatureNormaliser.load(file);
          expect(b.toJSON()).toEqual(a.toJSON());
        },
      ),
      { numRuns: 25 },
    );
    expect((await readdir(path.join(dir, 'nested'))).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });

  it('writes pretty { key: { mean, var } } JSON with every prior key', async () => {
    const file = path.join(dir, 'gnn_norms.json');
    const n = new FeatureNormaliser();
    n.normalise('loss', 0.4);
    await n.save(file);
    const saved = JSON.parse(await readFile(file, 'utf8')) as Record<string, { mean: number; var: number }>;
    expect(Object.keys(saved).sort()).toEqual(Object.keys(NORMALISER_PRIORS).sort());
    expect(saved.loss?.mean).toBeCloseTo(0.76, 12);
    expect(saved.global_step?.mean).toBeCloseTo(Math.log1p(100), 12);
  });

  it('starts from the priors when the file is missing', async () => {
    const n = await FeatureNormaliser.load(path.join(dir, 'absent.json'));
    expect(n.stats('loss')).toEqual({ mean: 0.8, var: 0.09 });
    expect(n.dirty).toBe(false);
  });

  it('accepts the prototype std form and squares it', () => {
    const n = FeatureNormaliser.fromJSON({ custom: { mean: 1, std: 3 } });
    expect(n.stats('custom')).toEqual({ mean: 1, var: 9 });
    expect(n.stats('loss')).toEqual({ mean: 0.8, var: 0.09 });
  });

  it('rejects a corrupt file with TAMIYO_GRAPH_INVALID instead of ignoring it', async () => {
    const garbage = path.join(dir, 'garbage.json');
    await writeFile(garbage, '{ not json', 'utf8');
    const notJson = await rejection(FeatureNormaliser.load(garbage));
    expect(isEsperError(notJson, ErrorCode.TAMIYO_GRAPH_INVALID)).toBe(true);

    const wrongShape = path.join(dir, 'shape.json');
    await writeFile(wrongShape, JSON.stringify({ loss: { mean: 'a', var: 1 } }), 'utf8');
    const badEntry = await rejection(FeatureNormaliser.load(wrongShape));
    expect(isEsperError(badEntry, ErrorCode.TAMIYO_GRAPH_INVALID)).toBe(true);
    expect((badEntry as { details: Record<string, unknown> }).details).toMatchObject({ path: wrongShape, paths: '$.loss.mean' });
    expect((badEntry as Error).message).toContain(wrongShape);

    const nullFile = path.join(dir, 'null.json');
    await writeFile(nullFile, 'null', 'utf8');
    expect(((await rejection(FeatureNormaliser.load(nullFile))) as { details: Record<string, unknown> }).details).toMatchObject({
      path: nullFile,
      paths: '$',
    });

    expect(() => FeatureNormaliser.fromJSON([1, 2])).toThrow(expect.objectContaining({ code: ErrorCode.TAMIYO_GRAPH_INVALID }));
    expect(() => FeatureNormaliser.fromJSON({ loss: { mean: 0, var: -1 } })).toThrow(
      expect.objectContaining({ code: ErrorCode.TAMIYO_GRAPH_INVALID }),
    );
  });
});
