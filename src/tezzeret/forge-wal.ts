/**
 * The forge's job WAL: a core `RecordLog` of JSON records — `started` before a compile,
 * `done` (with the artifact checksum) after Urza committed it, `failed` when a job gives up.
 * Each record is checked against its zod schema when read (`parsePersistedJson`); a bad one
 * names the file, the offset and every bad path.
 */
import { z } from 'zod';
import { ErrorCode, parsePersistedJson, RecordLog } from '../core/index.js';

/** Compile strategies of the forge. */
export const ForgeStrategy = { STANDARD: 'standard', CONSERVATIVE: 'conservative' } as const;

/** Union of {@link ForgeStrategy} values. */
export type ForgeStrategy = (typeof ForgeStrategy)[keyof typeof ForgeStrategy];

const job = z.string().min(1);
const WalRecordSchema = z.discriminatedUnion('type', [
  z.strictObject({
    v: z.literal(1),
    type: z.literal('started'),
    job,
    attempt: z.number().int().positive(),
    strategy: z.enum([ForgeStrategy.STANDARD, ForgeStrategy.CONSERVATIVE]),
  }),
  z.strictObject({ v: z.literal(1), type: z.literal('done'), job, checksum: z.string().min(1), guardDigest: z.string().min(1) }),
  z.strictObject({ v: z.literal(1), type: z.literal('failed'), job, reason: z.string() }),
]);

/** One WAL record. */
export type ForgeWalRecord = z.infer<typeof WalRecordSchema>;

/** What the WAL says about a job: its last record. */
export type ForgeJobState =
  { readonly type: 'started' } | { readonly type: 'done'; readonly checksum: string } | { readonly type: 'failed' };

const encoder = new TextEncoder();

/** The job WAL of one forge run. */
export class ForgeWal {
  readonly #log: RecordLog;

  private constructor(log: RecordLog) {
    this.#log = log;
  }

  /** Opens (creating if needed) the WAL at `walPath`; a torn tail is recovered by the record log. */
  static async open(walPath: string): Promise<ForgeWal> {
    return new ForgeWal(await RecordLog.open(walPath));
  }

  /** Absolute path of the WAL file. */
  get path(): string {
    return this.#log.path;
  }

  /**
   * Each job's last record.
   * @throws PersistedStateError `TEZZERET_FORGE_WAL_INVALID` naming the file and offset of a
   *   record that is not UTF-8 JSON or not of the record schema (`details` `{ path, offset }`).
   */
  async states(): Promise<Map<string, ForgeJobState>> {
    const states = new Map<string, ForgeJobState>();
    for await (const { payload, offset } of this.#log.records()) {
      const record = this.#decode(payload, offset);
      states.set(record.job, record.type === 'done' ? { type: 'done', checksum: record.checksum } : { type: record.type });
    }
    return states;
  }

  /** Appends `record` durably. */
  async append(record: ForgeWalRecord): Promise<void> {
    await this.#log.append(encoder.encode(JSON.stringify(record)));
  }

  /** Rewrites the WAL to each job's last record, when that is `done`. */
  async compact(): Promise<void> {
    const last = new Map<string, number>();
    for await (const { payload, offset } of this.#log.records()) last.set(this.#decode(payload, offset).job, offset);
    await this.#log.rewrite((payload, offset) => {
      const record = this.#decode(payload, offset);
      return record.type === 'done' && last.get(record.job) === offset;
    });
  }

  /** Closes the file. Idempotent (the record log's close). */
  close(): Promise<void> {
    return this.#log.close();
  }

  /** `await using` support: same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.#log.close();
  }

  #decode(payload: Uint8Array, offset: number): ForgeWalRecord {
    return parsePersistedJson(WalRecordSchema, payload, {
      code: ErrorCode.TEZZERET_FORGE_WAL_INVALID,
      what: `forge WAL ${this.path}: record at byte ${offset}`,
      details: { path: this.path, offset },
    });
  }
}
