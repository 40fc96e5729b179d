import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runEvents } from '../../src/cli/events.js';
import { main } from '../../src/cli/main.js';
import { FakeClock, loadSettings } from '../../src/core/index.js';
import { FieldReportOutcome, MessagePriority, TelemetryLevel } from '../../src/leyline/index.js';
import { EventStore } from '../../src/nissa/index.js';
import { fieldReport, packet } from '../nissa/event-store-fixtures.js';

const T0 = Date.UTC(2026, 2, 1, 12);

let dir: string;
let file: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'esper-events-'));
  file = path.join(dir, 'events.db');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function capture(): { io: Parameters<typeof runEvents>[1]; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } },
    out: () => out,
    err: () => err,
  };
}

async function events(args: readonly string[], nowMs = T0 + 60_000): Promise<{ code: number; out: string; err: string }> {
  const c = capture();
  const code = await runEvents(args, c.io, { nowMs, settings: loadSettings({ env: { ESPER_NISSA_EVENT_STORE_PATH: file } }) });
  return { code, out: c.out(), err: c.err() };
}

function seedStore(): void {
  const store = EventStore.open({ path: file, clock: new FakeClock({ wallMs: T0 }) });
  store.ingestTelemetry([
    packet({
      packetId: 'p1',
      timeMs: T0 - 3 * 3_600_000,
      source: 'kasmina',
      run: 'run-a',
      events: [{ description: 'seed_stage_changed', attributes: { seed_id: 'seed-1', from: 'TRAINING', to: 'BLENDING' } }],
    }),
    packet({
      packetId: 'p2',
      timeMs: T0 - 60_000,
      source: 'tamiyo',
      run: 'run-a',
      priority: MessagePriority.HIGH,
      events: [{ description: 'tamiyo.bsds.hazard', level: TelemetryLevel.ERROR, attributes: { seed_id: 'seed-2', risk: '0.91' } }],
    }),
    packet({
      packetId: 'p3',
      timeMs: T0,
      source: 'oona',
      run: 'run-b',
      events: [{ description: 'dead_letter', level: TelemetryLevel.WARNING, attributes: { reason: 'bad\u001b[2Jsignature' } }],
    }),
  ]);
  store.ingestFieldReports([
    fieldReport({ reportId: 'r1', timeMs: T0 - 1_000, run: 'run-a', seed: 'seed-1', lossDelta: -0.125 }),
    fieldReport({ reportId: 'r2', timeMs: T0, run: 'run-b', seed: 'seed-9', outcome: FieldReportOutcome.REGRESSION }),
  ]);
  store.close();
}

describe('esper events', () => {
  it('prints a table of telemetry events, newest first, control characters neutralised', async () => {
    seedStore();
    const { code, out, err } = await events([]);
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+LEVEL\s+SOURCE\s+RUN\s+SEED\s+EVENT\s+ATTRIBUTES$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[5])).toEqual(['dead_letter', 'tamiyo.bsds.hazard', 'seed_stage_changed']);
    expect(lines[1]).toContain('2026-03-01T12:00:00.000Z');
    expect(lines[1]).toContain('reason=bad?[2Jsignature');
    expect(out).not.toContain('\u001b');
    expect(lines[3]).toMatch(/info\s+kasmina\s+run-a\s+seed-1\s+seed_stage_changed\s+from=TRAINING to=BLENDING$/);
  });

  it('filters by run, seed, source, level, event name and time, and prints JSON lines', async () => {
    seedStore();
    const ids = async (args: string[]): Promise<string[]> => {
      const { code, out } = await events([...args, '--json']);
      expect(code).toBe(0);
      return out
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => (JSON.parse(l) as { packetId: string }).packetId);
    };
    expect(await ids(['--run', 'run-a'])).toEqual(['p2', 'p1']);
    expect(await ids(['--seed', 'seed-1'])).toEqual(['p1']);
    expect(await ids(['--source', 'oona'])).toEqual(['p3']);
    expect(await ids(['--level', 'warning'])).toEqual(['p3', 'p2']);
    expect(await ids(['--event', 'tamiyo.*'])).toEqual(['p2']);
    expect(await ids(['--since', '2h'])).toEqual(['p3', 'p2']);
    expect(await ids(['--since', '2026-03-01T11:00Z', '--until', '2026-03-01T12:00'])).toEqual(['p2']);
    expect(await ids(['--oldest-first', '--limit', '2'])).toEqual(['p1', 'p2']);
    expect(await ids(['--run', 'nobody'])).toEqual([]);
    const [line] = (await events(['--json', '--limit', '1', '--level', 'error'])).out.trim().split('\n');
    expect(JSON.parse(line!)).toEqual({
      time: '2026-03-01T11:59:00.000Z',
      receivedAt: '2026-03-01T12:00:00.000Z',
      level: 'error',
      priority: MessagePriority.HIGH,
      source: 'tamiyo',
      run: 'run-a',
      seed: 'seed-2',
      event: 'tamiyo.bsds.hazard',
      eventId: 'p2:evt-1',
      packetId: 'p2',
      attributes: { seed_id: 'seed-2', risk: '0.91' },
    });
  });

  it('lists field reports as a table or JSON', async () => {
    seedStore();
    const table = await events(['--field-reports']);
    expect(table.code).toBe(0);
    const lines = table.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+OUTCOME\s+RUN\s+SEED\s+BLUEPRINT\s+WINDOW\s+LOSS Δ\s+NOTES$/);
    expect(lines[1]).toMatch(/regression\s+run-b\s+seed-9\s+BP001\s+3 ep\s+-0\.2500\s+grew well$/);
    expect(lines[2]).toMatch(/success\s+run-a\s+seed-1/);
    const json = await events(['--field-reports', '--run', 'run-a', '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ reportId: 'r1', outcome: 'success', seed: 'seed-1', delta: { lossDelta: -0.125 } });
  });

  it('says so on stderr when nothing matches, and exits 0', async () => {
    seedStore();
    const { code, out, err } = await events(['--run', 'nobody']);
    expect({ code, out }).toEqual({ code: 0, out: '' });
    expect(err).toContain('no telemetry events match');
  });

  it('exits 2 on bad flags, naming them', async () => {
    seedStore();
    for (const [args, text] of [
      [['--level', 'loud'], '--level must be one of info, warning, error, critical'],
      [['--since', 'yesterday'], '--since must be an ISO 8601 time'],
      [['--until', '2026-13-45'], '--until'],
      [['--limit', '0'], '--limit'],
      [['--field-reports', '--level', 'error'], 'not to --field-reports'],
      [['--bogus'], 'bogus'],
    ] as const) {
      const { code, err } = await events(args);
      expect(code, args.join(' ')).toBe(2);
      expect(err).toContain(text);
      expect(err).toContain('Usage: esper events');
    }
  });

  it('exits 1 naming the file when the store is missing, and does not create it', async () => {
    const { code, out, err } = await events([]);
    expect({ code, out }).toEqual({ code: 1, out: '' });
    expect(err).toContain(file);
    expect(err).toContain('does not exist');
    expect(err).toContain('ESPER_NISSA_EVENT_STORE_INVALID');
    expect(existsSync(file)).toBe(false);
  });

  it('exits 1 naming the file when the store is corrupt, and leaves it as it was', async () => {
    const other = path.join(dir, 'garbage.db');
    await writeFile(other, Buffer.alloc(8192, 0xab));
    const before = await readFile(other);
    const { code, err } = await events(['--store', other]);
    expect(code).toBe(1);
    expect(err).toContain(`event store ${other}`);
    expect(err).toContain('not an event store');
    expect(await readFile(other)).toEqual(before);
  });

  it('reads the store while a writer holds it open', async () => {
    seedStore();
    const store = EventStore.open({ path: file });
    try {
      store.ingestTelemetry([packet({ packetId: 'live', timeMs: T0 + 1, events: [{ description: 'step' }] })]);
      const { code, out } = await events(['--limit', '1', '--json']);
      expect(code).toBe(0);
      expect(JSON.parse(out)).toMatchObject({ packetId: 'live' });
    } finally {
      store.close();
    }
  });

  it('is dispatched by esper and listed in its help', async () => {
    seedStore();
    const c = capture();
    expect(await main(['events', '--store', file, '--json', '--limit', '1'], c.io)).toBe(0);
    expect(JSON.parse(c.out())).toMatchObject({ packetId: 'p3' });
    const h = capture();
    await main(['--help'], h.io);
    expect(h.out()).toContain('esper events');
    const help = capture();
    expect(await main(['events', '--help'], help.io)).toBe(0);
    expect(help.out()).toContain('--field-reports');
  });
});
