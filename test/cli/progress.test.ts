import { describe, expect, it } from 'vitest';
import { Progress } from '../../src/cli/progress.js';
import type { StepReport } from '../../src/tolaria/index.js';

function stderr() {
  let text = '';
  return { io: { stdout: { write: () => true }, stderr: { write: (s: string) => ((text += s), true) } }, text: () => text };
}

const step = (stepInEpoch: number, loss: number): StepReport => ({
  epoch: 0,
  globalStep: stepInEpoch,
  stepInEpoch,
  stepsPerEpoch: 100,
  loss,
  learningRate: 0.001,
  stepMs: 150,
});

describe('Progress off a TTY', () => {
  it('prints a line within an epoch at most every interval, with steps done and the running loss, epochs from 1', () => {
    let now = 0;
    const out = stderr();
    const progress = new Progress(out.io, 3, { intervalMs: 2_000, now: () => now });
    for (let i = 1; i <= 99; i += 1) {
      now = i * 150;
      progress.step(step(i, i % 2 === 0 ? 1 : 3));
    }
    const lines = out.text().trimEnd().split('\n');
    // From the first step at 0.15 s to step 99 at 14.85 s: a line every ≥ 2 s, so 7 lines.
    expect(lines).toHaveLength(7);
    expect(lines[0]).toBe('epoch 1/3: step 15/100, running loss 2.0667, 150.0 ms/step');
    // The last step of an epoch prints nothing: the epoch line follows it.
    now += 5_000;
    progress.step(step(100, 2));
    expect(out.text().trimEnd().split('\n')).toHaveLength(7);
  });

  it('counts the interval from the first step of an epoch, not from before it (data loading, forging)', () => {
    let now = 0;
    const out = stderr();
    const progress = new Progress(out.io, 1, { now: () => now });
    now = 60_000;
    progress.step(step(1, 1));
    now = 61_000;
    progress.step(step(2, 1));
    expect(out.text()).toBe('');
  });
});
