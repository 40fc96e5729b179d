/**
 * Embedding registries: stable small-integer ids for categorical graph inputs, shared by
 * Tamiyo and Simic in one directory (reference prototype-tamiyo-simic §6): "" → 0, a known
 * key → its index, a new key → `size + 1`, persisted at once (atomically, synchronously:
 * `get` runs inside the synchronous graph build, and new keys are rare); once indices
 * would reach `maxSize`, a key maps to a stable hash (blake2s) modulo `maxSize`.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ErrorCode, EsperError, optionChecks, parsePersisted, parsePersistedJson } from '../core/index.js';

/** Stable 32-bit hash of `key`: blake2s256 over its UTF-8 bytes, first 4 bytes big-endian. */
export function stableHash32(key: string): number {
  return createHash('blake2s256').update(key, 'utf8').digest().readUInt32BE(0);
}

/** Options of {@link EmbeddingRegistry}. */
export interface EmbeddingRegistryOptions {
  /** Indices stay below this; overflowing keys hash into [0, maxSize). */
  readonly maxSize: number;
  /** JSON file the table persists to; in memory only when absent. @default none */
  readonly filePath?: string;
  /** Initial `{ key: index }` table (as loaded from `filePath`): keys non-empty, indices in [1, maxSize) and unique. @default {} */
  readonly entries?: unknown;
}

/** A key → index table; see the module comment. */
export class EmbeddingRegistry {
  /** Name of the table (file stem), for errors. */
  readonly name: string;
  readonly maxSize: number;
  readonly #filePath: string | undefined;
  readonly #table = new Map<string, number>();

  constructor(name: string, options: EmbeddingRegistryOptions) {
    optionChecks(`EmbeddingRegistry ${name}`).integer('maxSize', options.maxSize, { min: 2 });
    this.name = name;
    this.maxSize = options.maxSize;
    this.#filePath = options.filePath;
    const file = options.filePath;
    const entries = parsePersisted(entriesSchema(options.maxSize), options.entries === undefined ? {} : options.entries, {
      what: file === undefined ? `registry ${name} entries` : `registry file ${file}`,
      details: { registry: name, ...(file === undefined ? {} : { path: file }) },
      code: ErrorCode.TAMIYO_GRAPH_INVALID,
    });
    for (const [key, index] of Object.entries(entries)) this.#table.set(key, index);
  }

  /** Number of stored keys. */
  get size(): number {
    return this.#table.size;
  }

  /** Index of `key`, storing (and persisting) a new key while there is room. */
  get(key: string): number {
    if (key === '') return 0;
    const known = this.#table.get(key);
    if (known !== undefined) return known;
    const index = this.#table.size + 1;
    if (index >= this.maxSize) return stableHash32(key) % this.maxSize;
    this.#table.set(key, index);
    if (this.#filePath !== undefined) {
      try {
        writeAtomicSync(this.#filePath, JSON.stringify(this.toJSON()));
      } catch (error) {
        // Keep memory and disk in step: an index that is not durable is not handed out.
        this.#table.delete(key);
        throw new EsperError(ErrorCode.INVALID_STATE, `registry ${this.name}: cannot persist '${key}' to ${this.#filePath}`, {
          cause: error,
          details: { registry: this.name, path: this.#filePath },
        });
      }
    }
    return index;
  }

  /** Index of `key` if stored, without storing it. */
  peek(key: string): number | undefined {
    return this.#table.get(key);
  }

  /** `{ key: index }` in insertion order. */
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.#table);
  }

  /**
   * SHA-256 hex of the compact JSON array of `[key, index]` pairs sorted by key (code
   * point order), with non-ASCII escaped as `\uXXXX` — the bytes Python's
   * `json.dumps(..., separators=(",", ":"))` gives (reference §6).
   */
  digest(): string {
    const pairs = [...this.#table].sort(([a], [b]) => compareCodePoints(a, b));
    return createHash('sha256').update(asciiJson(pairs), 'utf8').digest('hex');
  }
}

/** Name, file and size of each registry (reference §6 table). */
export const REGISTRY_SPECS = Object.freeze({
  seed: { file: 'seed_registry.json', maxSize: 1024 },
  blueprint: { file: 'blueprint_registry.json', maxSize: 1024 },
  schedule: { file: 'schedule_registry.json', maxSize: 64 },
  layerType: { file: 'layer_type_registry.json', maxSize: 1024 },
  activationType: { file: 'activation_type_registry.json', maxSize: 1024 },
  optimizerFamily: { file: 'optimizer_family_registry.json', maxSize: 256 },
  hazardClass: { file: 'hazard_class_registry.json', maxSize: 256 },
} as const);

/** One of the registries of {@link EmbeddingRegistries}. */
export type RegistryName = keyof typeof REGISTRY_SPECS;

/** Registry names, in {@link REGISTRY_SPECS} order. */
export const REGISTRY_NAMES = Object.freeze(Object.keys(REGISTRY_SPECS) as RegistryName[]);

/** Blending schedules pre-seeded in order (linear 1, cosine 2, warmup_hold 3). */
export const SCHEDULE_SEED = Object.freeze(['linear', 'cosine', 'warmup_hold'] as const);

/** Optimizer families pre-seeded in order (sgd 1 … adagrad 5). */
export const OPTIMIZER_SEED = Object.freeze(['sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'] as const);

/** The seven registries of Tamiyo and Simic, in one directory or in memory. */
export class EmbeddingRegistries {
  readonly seed: EmbeddingRegistry;
  readonly blueprint: EmbeddingRegistry;
  readonly schedule: EmbeddingRegistry;
  readonly layerType: EmbeddingRegistry;
  readonly activationType: EmbeddingRegistry;
  readonly optimizerFamily: EmbeddingRegistry;
  readonly hazardClass: EmbeddingRegistry;
  /** Directory the files live in; undefined in memory. */
  readonly directory: string | undefined;

  private constructor(registries: Readonly<Record<RegistryName, EmbeddingRegistry>>, directory: string | undefined) {
    this.seed = registries.seed;
    this.blueprint = registries.blueprint;
    this.schedule = registries.schedule;
    this.layerType = registries.layerType;
    this.activationType = registries.activationType;
    this.optimizerFamily = registries.optimizerFamily;
    this.hazardClass = registries.hazardClass;
    this.directory = directory;
    for (const method of SCHEDULE_SEED) this.schedule.get(method);
    for (const family of OPTIMIZER_SEED) this.optimizerFamily.get(family);
  }

  /**
   * Opens the registry files under `directory`, creating the directory and any missing
   * file as `{}`.
   * @throws EsperError TAMIYO_GRAPH_INVALID naming the file when it is not a `{ key: index }`
   *   JSON object with indices in [1, maxSize) and unique.
   */
  static async open(directory: string): Promise<EmbeddingRegistries> {
    await mkdir(directory, { recursive: true });
    const registries = {} as Record<RegistryName, EmbeddingRegistry>;
    for (const name of REGISTRY_NAMES) {
      const spec = REGISTRY_SPECS[name];
      const filePath = path.join(directory, spec.file);
      const entries = await readEntries(filePath);
      if (entries === undefined) writeAtomicSync(filePath, '{}');
      registries[name] = new EmbeddingRegistry(name, { maxSize: spec.maxSize, filePath, entries });
    }
    return new EmbeddingRegistries(registries, directory);
  }

  /** Registries that are never persisted (tests, dry runs). */
  static inMemory(): EmbeddingRegistries {
    const registries = {} as Record<RegistryName, EmbeddingRegistry>;
    for (const name of REGISTRY_NAMES) registries[name] = new EmbeddingRegistry(name, { maxSize: REGISTRY_SPECS[name].maxSize });
    return new EmbeddingRegistries(registries, undefined);
  }

  /** The registry called `name`. */
  byName(name: RegistryName): EmbeddingRegistry {
    return this[name];
  }

  /** `{ name: digest }` of every registry, for checkpoint metadata. */
  digests(): Record<RegistryName, string> {
    const out = {} as Record<RegistryName, string>;
    for (const name of REGISTRY_NAMES) out[name] = this[name].digest();
    return out;
  }
}

/** `{ key: index }` with non-empty keys and unique indices in [1, maxSize). */
function entriesSchema(maxSize: number) {
  return z
    .record(
      z.string().min(1),
      z
        .number()
        .int()
        .min(1)
        .max(maxSize - 1),
    )
    .superRefine((entries, ctx) => {
      const used = new Map<number, string>();
      for (const [key, index] of Object.entries(entries)) {
        const other = used.get(index);
        if (other !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `index ${index} is also '${other}'` });
        used.set(index, key);
      }
    });
}

/** The stored JSON, or undefined when the file does not exist. */
async function readEntries(filePath: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return parsePersistedJson(z.unknown(), text, {
    what: `registry file ${filePath}`,
    details: { path: filePath },
    code: ErrorCode.TAMIYO_GRAPH_INVALID,
  });
}

function writeAtomicSync(filePath: string, text: string): void {
  mkdirSync(path.dirname(filePath), { recursive: true });
  const temp = `${filePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(temp, text, 'utf8');
    renameSync(temp, filePath);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}

function compareCodePoints(a: string, b: string): number {
  // UTF-8 byte order equals code point order (Python's str ordering).
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** JSON.stringify with every character outside printable ASCII escaped (Python ensure_ascii). */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
