/**
 * Strict JSON parsing that says where the text is wrong. `JSON.parse` decides; on failure
 * `jsonc-parser` (in strict mode) locates the first error, because V8's message gives a
 * position for some errors only and may quote the text around it (which may be a secret).
 */
import { parse as locateErrors, printParseErrorCode, type ParseError } from 'jsonc-parser';

/** Where and why a JSON text is invalid. Never quotes the text. */
export interface JsonSyntaxProblem {
  /** 1-based line of the first error, when it could be located. */
  readonly line?: number;
  /** 1-based column (UTF-16 code units) of the first error, when it could be located. */
  readonly column?: number;
  /** What is wrong, in words (`value expected`, `invalid UTF-8`). */
  readonly problem: string;
}

/** The outcome of {@link parseJsonText}. */
export type JsonTextResult = { readonly ok: true; readonly value: unknown } | ({ readonly ok: false } & JsonSyntaxProblem);

const decoder = new TextDecoder('utf-8', { fatal: true });

/** `ValueExpected` → `value expected`. */
function words(error: ParseError): string {
  return printParseErrorCode(error.error)
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase();
}

/**
 * Parses `text` (a string, or UTF-8 bytes decoded strictly; bytes may start with a
 * byte-order mark) as JSON: no comments, no trailing commas. Never throws.
 */
export function parseJsonText(text: string | Uint8Array): JsonTextResult {
  let source: string;
  if (typeof text === 'string') source = text;
  else {
    try {
      source = decoder.decode(text);
    } catch {
      return { ok: false, problem: 'invalid UTF-8' };
    }
  }
  try {
    return { ok: true, value: JSON.parse(source) };
  } catch {
    const errors: ParseError[] = [];
    locateErrors(source, errors, { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false });
    const first = errors[0];
    if (first === undefined) return { ok: false, problem: 'not valid JSON' };
    const before = source.slice(0, first.offset);
    const line = before.split('\n').length;
    const column = first.offset - before.lastIndexOf('\n');
    return { ok: false, line, column, problem: words(first) };
  }
}

/** `line 3, column 7: value expected`, or the problem alone when it has no position. */
export function formatJsonSyntaxProblem(problem: JsonSyntaxProblem): string {
  return problem.line === undefined ? problem.problem : `line ${problem.line}, column ${problem.column}: ${problem.problem}`;
}
