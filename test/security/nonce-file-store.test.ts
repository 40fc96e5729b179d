import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, FakeClock, MemoryTelemetrySink, RecordLog } from '../../src/core/index.js';
import { AdaptationCommandSchema, CommandType, TelemetryLevel } from '../../src/leyline/index.js';
import { CommandVerifier, FileNonceStore, HmacSigner, KeyRing, NonceLedger, RejectionReason } from '../../src/security/index.js';
import { encodeNonceRecord } from '../../src/security/nonce-file-store.js';

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esper-nonces-'));
  file = path.join(dir, 'security', 'nonces-kasmina.wal');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openLedger(clock: FakeClock, sink = new MemoryTelemetrySink(), compactAfterRecords?: number): Promise<NonceLedger> {
  const store = await FileNonceStore.open(file, compactAfterRecords === undefined ? {} : { compactAfterRecords });
  return NonceLedger.open({ store, clock, ttlSeconds: 10, sink, source: 'kasmina' });
}

/** Opens a ledger on the file, registers `nonces` and closes it again. */
async function writeNonces(clock: FakeClock, ...nonces: string[]): Promise<void> {
  const ledger = await openLedger(clock);
  for (const nonce of nonces) ledger.register(nonce);
  await ledger.close();
}

function events(sink: MemoryTelemetrySink): { description: string; level: TelemetryLevel; attributes: Record<string, string> }[] {
  return sink.packets.flatMap((p) => p.events);
}

describe('FileNonceStore', () => {
  it('refuses a replay after a restart: a new verifier on the same file rejects the same signed command', async () => {
    const clock = new FakeClock();
    const signer = new HmacSigner(new KeyRing([{ keyId: 'k', secret: Buffer.from('nonce-file-store-test-secret-01') }]), { clock });
    const command = signer.sign(
      AdaptationCommandSchema,
      create(AdaptationCommandSchema, { commandId: 'cmd-1', commandType: CommandType.COMMAND_SEED, trainingRunId: 'run' }),
    );
    const bytes = toBinary(AdaptationCommandSchema, command);
    const verifierOn = (ledger: NonceLedger, sink = new MemoryTelemetrySink()): CommandVerifier =>
      new CommandVerifier({ signer, ledger, sink, source: 'kasmina', clock, maxFreshnessWindowMs: 5_000, futureSkewMs: 1_000 });

    const first = await openLedger(clock);
    expect(verifierOn(first).verifyEncoded(bytes).ok).toBe(true);
    await first.close();
    clock.advance(2_000);

    // What a memory-only verifier did before: the replay passes.
    expect(verifierOn(new NonceLedger({ clock, ttlSeconds: 10 })).verifyEncoded(bytes).ok).toBe(true);

    const restarted = await openLedger(clock);
    const sink = new MemoryTelemetrySink();
    const result = verifierOn(restarted, sink).verifyEncoded(bytes);
    expect(result.ok === false && result.reason).toBe(RejectionReason.NONCE_REPLAYED);
    expect(events(sink)[0]).toMatchObject({ description: 'command_rejected', level: TelemetryLevel.CRITICAL });
    await restarted.close();
  });

  it('keeps each nonce only until its expiry, counted from when it was first registered', async () => {
    const clock = new FakeClock();
    const ledger = await openLedger(clock);
    ledger.register('n-1');
    await ledger.close();
    clock.advance(9_999);
    const reopened = await openLedger(clock);
    expect(reopened.has('n-1')).toBe(true);
    clock.advance(1);
    expect(reopened.has('n-1')).toBe(false);
    expect(reopened.register('n-1')).toBe(true);
    await reopened.close();
  });

  it('drops expired nonces from the file: at open, and by compaction once half the records expired', async () => {
    const clock = new FakeClock();
    const store = await FileNonceStore.open(file, { compactAfterRecords: 8 });
    const ledger = await NonceLedger.open({ store, clock, ttlSeconds: 10 });
    for (let i = 0; i < 6; i += 1) ledger.register(`old-${i}`);
    await ledger.flush();
    clock.advance(10_000);
    expect(store.fileRecords).toBe(6);
    ledger.register('new-0');
    await ledger.flush();
    expect(store.fileRecords).toBe(7);
    ledger.register('new-1'); // 8 records, 6 expired: compacted
    await ledger.flush();
    expect(store.fileRecords).toBe(2);
    await ledger.close();

    const grown = await FileNonceStore.open(file);
    const loaded = await grown.load(clock.wallMs());
    expect(loaded.records.map((r) => r.nonce).sort()).toEqual(['new-0', 'new-1']);
    await grown.close();
    clock.advance(10_000);
    const sizeBefore = (await stat(file)).size;
    const later = await FileNonceStore.open(file);
    expect((await later.load(clock.wallMs())).records).toEqual([]);
    expect(later.fileRecords).toBe(0);
    await later.close();
    expect((await stat(file)).size).toBeLessThan(sizeBefore);
  });

  it('recovers the valid prefix of a file whose last append was cut short, with a WARNING naming the file', async () => {
    const clock = new FakeClock();
    await writeNonces(clock, 'n-1', 'n-2');
    const { size } = await stat(file);
    await truncate(file, size - 3);

    const sink = new MemoryTelemetrySink();
    const reopened = await openLedger(clock, sink);
    expect(reopened.has('n-1')).toBe(true);
    expect(reopened.has('n-2')).toBe(false);
    expect(events(sink)).toEqual([
      expect.objectContaining({
        description: 'nonce_store_recovered',
        level: TelemetryLevel.WARNING,
        attributes: expect.objectContaining({ location: file }) as unknown,
      }),
    ]);
    expect(Number(events(sink)[0]!.attributes['truncated_tail_bytes'])).toBeGreaterThan(0);
    await reopened.close();
  });

  it('refuses to open a file damaged before its end, naming the file', async () => {
    await writeNonces(new FakeClock(), 'n-1', 'n-2');
    const damaged = Uint8Array.from(await readFile(file));
    damaged[12]! ^= 0xff; // inside the first record; the second one is intact
    await writeFile(file, damaged);
    await expect(FileNonceStore.open(file)).rejects.toMatchObject({ code: ErrorCode.RECORD_LOG_CORRUPT, details: { path: file } });
  });

  it('refuses a checksummed record that is not a nonce record, naming the file and offset', async () => {
    await mkdir(path.dirname(file), { recursive: true });
    const log = await RecordLog.open(file);
    await log.append(encodeNonceRecord({ nonce: 'n-1', expiresAtMs: Date.UTC(2030, 0, 1) }));
    await log.append(Uint8Array.of(9, 9, 9));
    await log.close();
    const store = await FileNonceStore.open(file);
    await expect(NonceLedger.open({ store, clock: new FakeClock() })).rejects.toMatchObject({
      code: ErrorCode.NONCE_STORE_CORRUPT,
      details: { path: file },
    });
  });

  it('recovers, from a file cut at any byte, exactly the nonces whose records lie before the cut (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 12 }),
        fc.nat(),
        async (nonces, cutSeed) => {
          await rm(path.dirname(file), { recursive: true, force: true });
          const clock = new FakeClock();
          const ledger = await openLedger(clock);
          const ends: number[] = [];
          for (const nonce of nonces) {
            ledger.register(nonce);
            await ledger.flush();
            ends.push((await stat(file)).size);
          }
          await ledger.close();
          const cut = cutSeed % (ends.at(-1)! + 1);
          await truncate(file, cut);

          const sink = new MemoryTelemetrySink();
          const reopened = await openLedger(clock, sink);
          const kept = nonces.filter((_, i) => ends[i]! <= cut);
          expect(nonces.filter((n) => reopened.has(n))).toEqual(kept);
          const recovered = events(sink).filter((e) => e.description === 'nonce_store_recovered');
          expect(recovered).toHaveLength(ends.includes(cut) || cut === 0 ? 0 : 1);
          await reopened.close();
        },
      ),
      { numRuns: 40 },
    );
  });
});
