import { create } from '@bufbuild/protobuf';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, MemoryTelemetrySink, type EsperSettings } from '../../src/core/index.js';
import { AdaptationCommandSchema, CommandType, SeedOperation } from '../../src/leyline/index.js';
import { HmacSigner, KeyRing, openCommandVerifier, RejectionReason, runNonceFile } from '../../src/security/index.js';

const ring = new KeyRing([{ keyId: 'k1', secret: Buffer.from('open-verifier-secret-0123456789', 'utf8') }]);

function signedCommand() {
  return new HmacSigner(ring).sign(
    AdaptationCommandSchema,
    create(AdaptationCommandSchema, {
      version: 1,
      commandId: 'cmd-1',
      commandType: CommandType.COMMAND_SEED,
      targetSeedId: 'seed-0',
      trainingRunId: 'run-1',
      issuedBy: 'tamiyo',
      payload: { case: 'seedOperation', value: { operation: SeedOperation.SEED_OP_GERMINATE, blueprintId: 'BP001' } },
    }),
  );
}

describe('openCommandVerifier', () => {
  let root: string;
  let settings: EsperSettings;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'esper-open-verifier-'));
    settings = loadSettings({ env: {}, overrides: { storage: { varDir: root } } });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('verifies with the settings and refuses, after a reopen on the same nonce file, a command it accepted before', async () => {
    const nonceFile = runNonceFile(settings, 'kasmina', 'run/1');
    expect(nonceFile).toBe(path.join(root, 'security', 'nonces-kasmina-run%2F1.wal'));
    const command = signedCommand();
    const first = await openCommandVerifier(settings, {
      keyRing: ring,
      telemetry: new MemoryTelemetrySink(),
      source: 'kasmina',
      nonceFile,
    });
    expect(first.verifier.verify(command).ok).toBe(true);
    await first.close();
    await first.close(); // idempotent
    const sink = new MemoryTelemetrySink();
    const second = await openCommandVerifier(settings, { keyRing: ring, telemetry: sink, source: 'kasmina', nonceFile });
    try {
      expect(second.verifier.verify(command)).toMatchObject({ ok: false, reason: RejectionReason.NONCE_REPLAYED });
      expect(sink.packets.some((p) => p.events.some((e) => e.description === 'command_rejected'))).toBe(true);
    } finally {
      await second.close();
    }
  });

  it('keeps the nonces under the var dir by default, one file per source', async () => {
    const opened = await openCommandVerifier(settings, { keyRing: ring, telemetry: new MemoryTelemetrySink(), source: 'tamiyo' });
    await opened.close();
    expect(opened.nonceFile).toBe(path.join(root, 'security', 'nonces-tamiyo.wal'));
    expect((await stat(opened.nonceFile)).isFile()).toBe(true);
  });

  it('refuses a nonce file it cannot use, naming it', async () => {
    const blocked = path.join(root, 'security', 'nonces-tamiyo.wal', 'inside.wal');
    await expect(
      openCommandVerifier(settings, { keyRing: ring, telemetry: new MemoryTelemetrySink(), source: 'x', nonceFile: blocked }),
    ).rejects.toThrow(/inside\.wal|nonces-tamiyo\.wal/);
  });
});
