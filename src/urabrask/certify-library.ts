/**
 * Certifies what has no verified sheet: every blueprint in Urza's library with a compiled
 * artifact and no safety data sheet that verifies is probed by Urabrask, and its signed
 * sheet and graph metadata stored — what Tamiyo reads before a run.
 */
import { ErrorCode, isEsperError } from '../core/index.js';
import type { Bus } from '../oona/index.js';
import { HmacSigner, type KeyRing } from '../security/index.js';
import type { UrzaLibrary } from '../urza/index.js';
import { UrabraskService } from './service.js';

/** What {@link certifyUnsheeted} is given. */
export interface CertifyLibraryDeps {
  /** Signs every sheet (its active key). */
  readonly keyRing: KeyRing;
  /** Where `BSDSIssued` / `BSDSFailed` go. @default none */
  readonly bus?: Bus;
  readonly signal?: AbortSignal;
}

/** What {@link certifyUnsheeted} did. */
export interface CertifyLibrarySummary {
  /** Sheets issued and stored. */
  readonly certified: number;
  /** Blueprints that already had a sheet that verifies. */
  readonly alreadyCertified: number;
  readonly wallMs: number;
}

/**
 * Issues a sheet for every blueprint of `library` that has an artifact and no sheet that
 * verifies, probing its first artifact. A sheet that fails verification (Urza already
 * reported it CRITICAL) counts as none: it is probed and issued again, never trusted.
 * @throws EsperError URABRASK_CERTIFY_FAILED for a blueprint that cannot be certified; Urza's errors
 */
export async function certifyUnsheeted(library: UrzaLibrary, deps: CertifyLibraryDeps): Promise<CertifyLibrarySummary> {
  const started = performance.now();
  const certifier = new UrabraskService({
    library,
    signer: new HmacSigner(deps.keyRing),
    ...(deps.bus === undefined ? {} : { bus: deps.bus }),
  });
  let certified = 0;
  let alreadyCertified = 0;
  for (const entry of library.list()) {
    deps.signal?.throwIfAborted();
    const blueprintId = entry.descriptor.blueprintId;
    const artifact = library.artifacts(blueprintId)[0];
    if (artifact === undefined) continue;
    if (hasVerifiedSheet(library, blueprintId)) {
      alreadyCertified += 1;
      continue;
    }
    const loaded = await library.load(blueprintId, artifact.siteKey);
    await certifier.certify({ descriptor: entry.descriptor, artifactBytes: loaded.bytes, siteKey: artifact.siteKey });
    certified += 1;
  }
  return { certified, alreadyCertified, wallMs: performance.now() - started };
}

/** Whether Urza holds a sheet of `blueprintId` that verifies (one that fails counts as none). */
function hasVerifiedSheet(library: UrzaLibrary, blueprintId: string): boolean {
  try {
    return library.getBsds(blueprintId) !== undefined;
  } catch (error) {
    if (isEsperError(error, ErrorCode.URZA_INTEGRITY_FAILURE)) return false;
    throw error;
  }
}
