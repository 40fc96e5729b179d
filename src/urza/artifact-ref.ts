/**
 * The `artifact_ref` of `KernelArtifactReady`: `urza://<blueprintId>/<siteKey>` (both
 * percent-encoded), resolved through the library, which verifies every load — not the path
 * of a file copy as in the prototype (reference prototype-blueprint-pipeline §4.8).
 */
import { ErrorCode, EsperError } from '../core/index.js';

const SCHEME = 'urza://';

/** The two parts of an artifact reference. */
export interface UrzaArtifactRef {
  readonly blueprintId: string;
  readonly siteKey: string;
}

/** `urza://<blueprintId>/<siteKey>`, both parts percent-encoded. */
export function formatUrzaArtifactRef(ref: UrzaArtifactRef): string {
  return `${SCHEME}${encodeURIComponent(ref.blueprintId)}/${encodeURIComponent(ref.siteKey)}`;
}

/**
 * Parses a reference made by {@link formatUrzaArtifactRef}.
 * @throws EsperError `INVALID_ARGUMENT` when `text` is not such a reference.
 */
export function parseUrzaArtifactRef(text: string): UrzaArtifactRef {
  const parts = text.startsWith(SCHEME) ? text.slice(SCHEME.length).split('/') : [];
  const [blueprint, site] = parts;
  if (parts.length !== 2 || blueprint === undefined || site === undefined || blueprint === '' || site === '') {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `not an urza artifact reference: '${text}'`, {
      details: { field: 'artifactRef' },
    });
  }
  try {
    return { blueprintId: decodeURIComponent(blueprint), siteKey: decodeURIComponent(site) };
  } catch (error) {
    throw new EsperError(ErrorCode.INVALID_ARGUMENT, `malformed urza artifact reference: '${text}'`, {
      details: { field: 'artifactRef' },
      cause: error,
    });
  }
}
