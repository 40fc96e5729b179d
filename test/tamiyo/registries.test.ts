import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { EmbeddingRegistries, EmbeddingRegistry, REGISTRY_NAMES, REGISTRY_SPECS, stableHash32 } from '../../src/tamiyo/registries.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tamiyo-reg-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('stableHash32', () => {
  it('is the first 4 bytes of blake2s256, big-endian, and the same on every call', () => {
    const expected = createHash('blake2s256').update('seed-7', 'utf8').digest().readUInt32BE(0);
    expect(stableHash32('seed-7')).toBe(expected);
    expect(stableHash32('seed-7')).toBe(stableHash32('seed-7'));
    expect(stableHash32('seed-8')).not.toBe(expected);
  });
});

describe('EmbeddingRegistry', () => {
  it('maps "" to 0, numbers new keys from 1 and keeps them stable', () => {
    const r = new EmbeddingRegistry('seed', { maxSize: 16 });
    expect(r.get('')).toBe(0);
    expect(r.get('a')).toBe(1);
    expect(r.get('b')).toBe(2);
    expect(r.get('a')).toBe(1);
    expect(r.size).toBe(2);
    expect(r.peek('c')).toBeUndefined();
  });

  it('hashes keys that would reach maxSize, without storing them', () => {
    const r = new EmbeddingRegistry('tiny', { maxSize: 3 });
    expect(r.get('a')).toBe(1);
    expect(r.get('b')).toBe(2);
    const overflow = r.get('c');
    expect(overflow).toBe(stableHash32('c') % 3);
    expect(r.get('c')).toBe(overflow);
    expect(r.size).toBe(2);
    expect(r.peek('c')).toBeUndefined();
  });

  it('digests the sorted [key, index] pairs as compact ASCII JSON (reference §6)', () => {
    const r = new EmbeddingRegistry('d', { maxSize: 64 });
    r.get('zeta');
    r.get('alpha');
    r.get('é');
    const json = '[["alpha",2],["zeta",1],["\\u00e9",3]]';
    expect(r.digest()).toBe(createHash('sha256').update(json, 'utf8').digest('hex'));
    const same = new EmbeddingRegistry('d2', { maxSize: 64, entries: { alpha: 2, zeta: 1, é: 3 } });
    expect(same.digest()).toBe(r.digest());
    same.get('new');
    expect(same.digest()).not.toBe(r.digest());
  });

  it('rejects invalid or duplicated stored indices with TAMIYO_GRAPH_INVALID', () => {
    expect(() => new EmbeddingRegistry('x', { maxSize: 8, entries: { a: 1, b: 1 } })).toThrow(
      expect.objectContaining({ code: ErrorCode.TAMIYO_GRAPH_INVALID }),
    );
    expect(() => new EmbeddingRegistry('x', { maxSize: 8, entries: { a: 8 } })).toThrow(
      expect.objectContaining({ code: ErrorCode.TAMIYO_GRAPH_INVALID }),
    );
    expect(() => new EmbeddingRegistry('x', { maxSize: 1 })).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('refuses to hand out an index it could not persist, with INVALID_STATE', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    await writeFile(blocker, 'x', 'utf8');
    const r = new EmbeddingRegistry('seed', { maxSize: 8, filePath: path.join(blocker, 'seed_registry.json') });
    expect(() => r.get('a')).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_STATE }));
    expect(r.size).toBe(0);
  });
});

describe('EmbeddingRegistries', () => {
  it('pre-seeds schedules (linear 1, cosine 2, warmup_hold 3) and optimizers (sgd 1 … adagrad 5)', () => {
    const r = EmbeddingRegistries.inMemory();
    expect(r.schedule.toJSON()).toEqual({ linear: 1, cosine: 2, warmup_hold: 3 });
    expect(r.optimizerFamily.toJSON()).toEqual({ sgd: 1, adam: 2, adamw: 3, rmsprop: 4, adagrad: 5 });
    expect(r.schedule.maxSize).toBe(64);
    expect(r.optimizerFamily.maxSize).toBe(256);
    expect(r.hazardClass.maxSize).toBe(256);
    expect(r.seed.maxSize).toBe(1024);
    expect(r.directory).toBeUndefined();
  });

  it('persists every registry as JSON under one directory and reloads the same indices and digests', async () => {
    const a = await EmbeddingRegistries.open(dir);
    expect(a.seed.get('seed-a')).toBe(1);
    expect(a.seed.get('seed-b')).toBe(2);
    expect(a.blueprint.get('BP001')).toBe(1);
    expect(a.activationType.get('relu')).toBe(1);
    expect(a.schedule.get('exotic')).toBe(4);
    const files = (await readdir(dir)).sort();
    expect(files).toEqual(REGISTRY_NAMES.map((name) => REGISTRY_SPECS[name].file).sort());
    expect(JSON.parse(await readFile(path.join(dir, 'seed_registry.json'), 'utf8'))).toEqual({ 'seed-a': 1, 'seed-b': 2 });

    const b = await EmbeddingRegistries.open(dir);
    expect(b.seed.get('seed-b')).toBe(2);
    expect(b.blueprint.get('BP001')).toBe(1);
    expect(b.schedule.get('exotic')).toBe(4);
    expect(b.schedule.get('linear')).toBe(1);
    expect(b.digests()).toEqual(a.digests());
    expect(Object.keys(b.digests())).toEqual([...REGISTRY_NAMES]);
  });

  it('rejects a corrupt registry file with TAMIYO_GRAPH_INVALID naming the path', async () => {
    const file = path.join(dir, 'blueprint_registry.json');
    await writeFile(file, '[1,2,3]', 'utf8');
    let caught: unknown;
    try {
      await EmbeddingRegistries.open(dir);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.TAMIYO_GRAPH_INVALID)).toBe(true);
    expect((caught as { details: Record<string, unknown> }).details.path).toBe(file);

    await writeFile(file, '{"BP001": 1, "BP002": 1}', 'utf8');
    await expect(EmbeddingRegistries.open(dir)).rejects.toMatchObject({
      code: ErrorCode.TAMIYO_GRAPH_INVALID,
      details: { path: file, paths: '$.BP002' },
    });
  });

  it.each([
    ['a mistyped index', '{"BP001": "1"}', '$.BP001'],
    ['a fractional index', '{"BP001": 1.5}', '$.BP001'],
    ['an index beyond maxSize', '{"BP001": 5000}', '$.BP001'],
    ['null', 'null', '$'],
    ['text that is not JSON', '{"BP001": ', '$'],
  ])('rejects a registry file holding %s, naming the file and the field', async (_what, text, field) => {
    const file = path.join(dir, 'blueprint_registry.json');
    await writeFile(file, text, 'utf8');
    const error = await EmbeddingRegistries.open(dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isEsperError(error, ErrorCode.TAMIYO_GRAPH_INVALID)).toBe(true);
    expect((error as { details: Record<string, unknown> }).details['path']).toBe(file);
    expect((error as { details: Record<string, unknown> }).details['paths']).toBe(field);
    expect((error as Error).message).toContain(file);
  });
});
