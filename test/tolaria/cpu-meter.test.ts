/** Tolaria's CPU meter: utilisation per window, and with a minimum window, few `process.cpuUsage` reads. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeClock } from '../../src/core/index.js';
import { CpuMeter } from '../../src/tolaria/state-packet.js';

/** Stubs `process.cpuUsage`: the process has used `usedUs` of CPU so far. */
function stubCpu(): { read: () => number; set: (usedUs: number) => void } {
  let used = 0;
  const spy = vi.spyOn(process, 'cpuUsage').mockImplementation((previous?: NodeJS.CpuUsage) => ({
    user: used - (previous?.user ?? 0),
    system: -(previous?.system ?? 0),
  }));
  return { read: () => spy.mock.calls.length, set: (usedUs) => (used = usedUs) };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('CpuMeter', () => {
  it('reports the utilisation since the previous reading, in percent of one core', () => {
    const cpu = stubCpu();
    const clock = new FakeClock();
    const meter = new CpuMeter(clock);
    clock.advance(10);
    cpu.set(5_000); // 5 ms of CPU in 10 ms
    expect(meter.sample()).toBeCloseTo(50, 9);
    clock.advance(20);
    cpu.set(45_000); // 40 ms of CPU in 20 ms: two cores busy
    expect(meter.sample()).toBeCloseTo(200, 9);
    expect(meter.sample()).toBeUndefined(); // no wall time since
  });

  it('with a minimum window, repeats the last closed window and does not read the process CPU inside one', () => {
    const cpu = stubCpu();
    const clock = new FakeClock();
    const meter = new CpuMeter(clock, { minWindowMs: 200 });
    const readsAtStart = cpu.read();
    clock.advance(50);
    expect(meter.sample()).toBeUndefined(); // no window closed yet
    expect(cpu.read()).toBe(readsAtStart);
    clock.advance(150);
    cpu.set(100_000);
    expect(meter.sample()).toBeCloseTo(50, 9); // 100 ms of CPU in 200 ms
    const reads = cpu.read();
    for (let i = 0; i < 10; i += 1) {
      clock.advance(3);
      expect(meter.sample()).toBeCloseTo(50, 9);
    }
    expect(cpu.read()).toBe(reads);
    clock.advance(170);
    cpu.set(300_000); // 200 ms of CPU in the 200 ms since the window closed
    expect(meter.sample()).toBeCloseTo(100, 9);
  });
});
