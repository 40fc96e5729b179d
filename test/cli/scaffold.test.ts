import { describe, expect, it } from 'vitest';
import { ErrorCode, EsperError, SettingsError } from '../../src/core/index.js';
import { exitCodeOf, helpText, parseCommandLine, UsageError, type CommandSpec } from '../../src/cli/scaffold.js';

const flags = {
  epochs: { kind: 'integer', value: '<n>', help: 'epochs', min: 1, default: 2 },
  shift: { kind: 'number', value: '<x>', help: 'any number' },
  mode: { kind: 'string', value: '<mode>', help: 'mode', choices: ['a', 'b'] },
  json: { kind: 'boolean', help: 'JSON out' },
} as const;
const spec: CommandSpec<typeof flags> = { name: 'esper demo', summary: 'a demo', synopsis: '[options]', flags };

describe('CLI scaffold', () => {
  it('applies defaults and parses every kind of flag', () => {
    expect(parseCommandLine(spec, []).values).toEqual({ epochs: 2, shift: undefined, mode: undefined, json: false });
    expect(parseCommandLine(spec, ['--epochs', '5', '--shift', '-2.5', '--mode', 'b', '--json']).values).toEqual({
      epochs: 5,
      shift: -2.5,
      mode: 'b',
      json: true,
    });
  });

  it('parses a negative number as the value of a flag, then range-checks it', () => {
    expect(() => parseCommandLine(spec, ['--epochs', '-1'])).toThrow('--epochs must be an integer ≥ 1, got "-1"');
    expect(parseCommandLine(spec, ['--shift', '-.5']).values.shift).toBe(-0.5);
  });

  it('refuses unknown flags, bad choices and extra arguments with a UsageError (exit 2)', () => {
    for (const argv of [['--wings'], ['--mode', 'c'], ['extra'], ['--epochs']]) {
      let thrown: unknown;
      try {
        parseCommandLine(spec, argv);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, argv.join(' ')).toBeInstanceOf(UsageError);
      expect(exitCodeOf(thrown)).toBe(2);
    }
  });

  it('maps failures to exit codes: settings and key ring 2, anything else 1', () => {
    expect(exitCodeOf(new SettingsError([{ source: 'env', key: 'X', message: 'bad' }]))).toBe(2);
    expect(exitCodeOf(new EsperError(ErrorCode.KEY_RING_INVALID, 'bad'))).toBe(2);
    expect(exitCodeOf(new EsperError(ErrorCode.INVALID_STATE, 'bug'))).toBe(1);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
  });

  it('generates the help from the declaration', () => {
    const help = helpText(spec);
    expect(help).toContain('Usage:\n  esper demo [options]');
    expect(help).toMatch(/--epochs <n> +epochs \(default 2\)/);
    expect(help).toMatch(/--mode <mode> +mode: a \| b/);
    expect(help).toMatch(/-h, --help +show this help/);
  });
});
