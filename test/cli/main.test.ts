import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { capture } from './fixtures/capture.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
};

describe('esper CLI', () => {
  it.each([[[]], [['--help']], [['-h']]])('prints usage and exits 0 for %j', async (argv) => {
    const { out, io } = capture();
    expect(await main(argv, io)).toBe(0);
    expect(out.stdout).toContain('Usage:');
    expect(out.stderr).toBe('');
  });

  it('prints the package version', async () => {
    const { out, io } = capture();
    expect(await main(['--version'], io)).toBe(0);
    expect(out.stdout).toBe(`${pkg.version}\n`);
  });

  it('exits 2 with usage on stderr for an unknown command', async () => {
    const { out, io } = capture();
    expect(await main(['grow-everything'], io)).toBe(2);
    expect(out.stderr).toContain("unknown command or option 'grow-everything'");
    expect(out.stdout).toBe('');
  });

  it('refuses arguments after --version', async () => {
    const { out, io } = capture();
    expect(await main(['--version', 'extra'], io)).toBe(2);
    expect(out.stderr).toContain('takes no arguments');
  });

  it('is installed as the esper bin', () => {
    expect(pkg.bin['esper']).toBe('./bin/esper.js');
  });
});
