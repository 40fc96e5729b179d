import { describe, expect, it } from 'vitest';
import { formatJsonSyntaxProblem, parseJsonText } from '../../src/core/json-text.js';

describe('parseJsonText', () => {
  it('parses what JSON.parse parses', () => {
    expect(parseJsonText('{"a": [1, 2.5, null, "x"]}')).toEqual({ ok: true, value: { a: [1, 2.5, null, 'x'] } });
  });

  it.each([
    ['{"a": }', 1, 7, 'value expected'],
    ['{\n  "a": 1,\n}', 3, 1, 'property name expected'],
    ['[1,2,,3]', 1, 6, 'value expected'],
    ['{"a": 1', 1, 8, 'close brace expected'],
    ['// note\n{}', 1, 1, 'invalid comment token'],
    ['{"a": 01}', 1, 8, 'comma expected'],
    ['{"a": NaN}', 1, 7, 'invalid symbol'],
  ])('locates the first error of %j (line %i, column %i: %s)', (text, line, column, problem) => {
    expect(parseJsonText(text)).toEqual({ ok: false, line, column, problem });
  });

  it('formats a problem with or without a position', () => {
    expect(formatJsonSyntaxProblem({ line: 2, column: 5, problem: 'value expected' })).toBe('line 2, column 5: value expected');
    expect(formatJsonSyntaxProblem({ problem: 'invalid UTF-8' })).toBe('invalid UTF-8');
  });

  it('decodes bytes strictly', () => {
    expect(parseJsonText(new TextEncoder().encode('{"é": 1}'))).toEqual({ ok: true, value: { é: 1 } });
    expect(parseJsonText(Uint8Array.from([0x22, 0xc3, 0x22]))).toEqual({ ok: false, problem: 'invalid UTF-8' });
  });
});
