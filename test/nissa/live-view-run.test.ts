/**
 * The live view of a real `esper run`, in real headless Chromium: the page is opened while
 * the run trains (Nissa embedded, on the run's in-process bus); it shows the run, its
 * accuracy curve gains points, and a seed's lane in the swimlane moves through stages. The
 * page's JavaScript errors and failed requests count as failures; a screenshot is saved to
 * `test-artifacts/live-view-run.png`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runRun } from '../../src/cli/run.js';
import { loadSettings } from '../../src/core/index.js';
import { capture } from '../cli/fixtures/capture.js';
import { launchChromium, watchedPage } from '../support/chromium.js';
import { freePort } from '../support/redis-server.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-live-view-run-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('the live view of a real run', () => {
  it('shows the run while it trains: the curve gains points and a seed moves through stages', async () => {
    const port = await freePort();
    const config = path.join(root, 'run.json');
    await writeFile(config, JSON.stringify({ dataset: 'spirals', hidden: [16, 16], epochs: 24, batchSize: 8, learningRate: 0.01 }));
    const settings = loadSettings({ env: {}, overrides: { storage: { varDir: path.join(root, 'var') }, nissa: { httpPort: port } } });
    const { io, out } = capture();
    const running = runRun(['--config', config, '--seed', '3', '--no-baseline'], io, { settings });
    const url = `http://127.0.0.1:${port}/`;
    await expect
      .poll(async () => (await fetch(`${url}healthz`).catch(() => undefined))?.status, { timeout: 60_000, interval: 100 })
      .toBe(200);

    const browser = await launchChromium();
    try {
      const { page, errors, failedRequests } = await watchedPage(browser, { offline: true });
      await page.goto(url);
      await page.locator('#connection[data-state="live"]').waitFor({ timeout: 15_000 });
      await expect.poll(() => page.locator('#runs li[data-run-id]').count(), { timeout: 30_000 }).toBeGreaterThan(0);
      // The curve gains points while the run trains.
      const points = async () => Number(await page.locator('#chart-accuracy').getAttribute('data-points'));
      await expect.poll(points, { timeout: 60_000 }).toBeGreaterThan(1);
      const earlier = await points();
      await expect.poll(points, { timeout: 60_000 }).toBeGreaterThan(earlier);
      // A seed's lane shows it moving through stages (two or more stage spans).
      const stagesOfSomeSeed = async () => {
        const lanes = await page.locator('#swimlane g.lane').evaluateAll((gs) => gs.map((g) => g.querySelectorAll('rect.stage').length));
        return Math.max(0, ...lanes);
      };
      await expect.poll(stagesOfSomeSeed, { timeout: 90_000 }).toBeGreaterThan(1);
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'live-view-run.png'), fullPage: true });
      expect(errors).toEqual([]);
      expect(failedRequests.filter((r) => !r.includes('/api/stream'))).toEqual([]);
    } finally {
      await browser.close();
    }
    expect(await running, out.stderr).toBe(0);
    expect(out.stderr).toContain(`live view and metrics at http://127.0.0.1:${port}/`);
  }, 240_000);
});
