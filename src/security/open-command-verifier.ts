/**
 * Security builds its command verifier itself: {@link openCommandVerifier} turns the
 * `security` settings, a key ring and a nonce file into a {@link CommandVerifier} whose nonce
 * ledger survives restarts, with one `close()` for what it opened.
 */
import path from 'node:path';
import { closeOnce, type Clock, type EsperSettings, type TelemetrySink } from '../core/index.js';
import { CommandVerifier } from './command-verifier.js';
import type { KeyRing } from './key-ring.js';
import { FileNonceStore } from './nonce-file-store.js';
import { NonceLedger } from './nonce-ledger.js';
import { HmacSigner } from './signer.js';

/** What {@link openCommandVerifier} is given; none of it is closed by the verifier. */
export interface CommandVerifierDeps {
  /** Keys commands are verified with. */
  readonly keyRing: KeyRing;
  /** Where `command_rejected` and nonce-store packets go. */
  readonly telemetry: TelemetrySink;
  /** Subsystem that verifies (`kasmina`): named in telemetry, metrics and the default nonce file. */
  readonly source: string;
  /**
   * The nonce ledger's record log (created when missing).
   * @default `<storage.varDir>/security/nonces-<source>.wal`
   */
  readonly nonceFile?: string;
  /** @default systemClock */
  readonly clock?: Clock;
}

/** An opened command verifier and the ledger it holds open. */
export interface OpenedCommandVerifier extends AsyncDisposable {
  readonly verifier: CommandVerifier;
  /** Path of the nonce ledger's file. */
  readonly nonceFile: string;
  /** Closes the nonce ledger (and its file). Idempotent (the first call's promise). */
  close(): Promise<void>;
}

/**
 * The nonce file of `source` in run `trainingRunId`:
 * `<storage.varDir>/security/nonces-<source>-<run id, URI-encoded>.wal`, so that a restarted
 * run still refuses replays of the commands it accepted.
 */
export function runNonceFile(settings: Pick<EsperSettings, 'storage'>, source: string, trainingRunId: string): string {
  return path.join(settings.storage.varDir, 'security', `nonces-${source}-${encodeURIComponent(trainingRunId)}.wal`);
}

/**
 * Opens a command verifier from the `security` settings: HMAC signer with the freshness
 * window, a nonce ledger (`nonceTtlSeconds`, `nonceMaxEntries`) over a `FileNonceStore`, and
 * the verifier's freshness and skew rules.
 * @throws EsperError for a nonce file that cannot be used, or rules the verifier refuses
 */
export async function openCommandVerifier(
  settings: Pick<EsperSettings, 'security' | 'storage'>,
  deps: CommandVerifierDeps,
): Promise<OpenedCommandVerifier> {
  const security = settings.security;
  const nonceFile = deps.nonceFile ?? path.join(settings.storage.varDir, 'security', `nonces-${deps.source}.wal`);
  const clock = deps.clock === undefined ? {} : { clock: deps.clock };
  const ledger = await NonceLedger.open({
    store: await FileNonceStore.open(nonceFile),
    ttlSeconds: security.nonceTtlSeconds,
    maxEntries: security.nonceMaxEntries,
    sink: deps.telemetry,
    source: deps.source,
    ...clock,
  });
  try {
    const verifier = new CommandVerifier({
      signer: new HmacSigner(deps.keyRing, { freshnessWindowMs: security.freshnessWindowMs }),
      ledger,
      sink: deps.telemetry,
      source: deps.source,
      maxFreshnessWindowMs: security.freshnessWindowMs,
      futureSkewMs: security.futureSkewMs,
      ...clock,
    });
    const close = closeOnce(() => ledger.close());
    return { verifier, nonceFile, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await ledger.close().catch(() => {
      // The verifier's refusal is what the caller needs to see.
    });
    throw error;
  }
}
