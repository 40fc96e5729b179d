/**
 * The live view in real headless Chromium (Debian's, via playwright-core): a page opened
 * before the run starts follows it live over SSE — the run appears, its curves gain points,
 * the swimlane shows the seed moving through its stages, the command and its ack show —
 * with no JavaScript error and no failed or off-machine request. Saves a screenshot to
 * `test-artifacts/live-view.png`.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerViewRoutes, RunBoard } from '../../src/nissa/index.js';
import { launchChromium, watchedPage } from '../support/chromium.js';
import { syntheticRun, telemetry, TelemetryLevel } from './view-fixtures.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');

let browser: Browser | undefined;
let app: FastifyInstance | undefined;

beforeAll(async () => {
  browser = await launchChromium();
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('live view in headless Chromium', () => {
  it('follows a training run live: run listed, curves grow, the seed walks its stages, command applied', async () => {
    if (browser === undefined) throw new Error('no browser');
    const board = new RunBoard();
    app = Fastify();
    registerViewRoutes(app, board);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const { page, errors, failedRequests } = await watchedPage(browser, { offline: true });
    await page.setViewportSize({ width: 1400, height: 1000 });
    await page.goto(`http://127.0.0.1:${address.port}/`);
    await page.locator('#connection[data-state="live"]').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.locator('#runs').textContent()).toContain('No runs yet');

    board.mode('operational');
    const deliveries = syntheticRun('run-live', 8, 10);
    const stagesSeen = new Set<string>();
    const accuracyPoints: number[] = [];
    let sent = 0;
    // The run trains while the page watches: each epoch's packets, then a look at the page.
    for (const delivery of deliveries) {
      board.ingest(delivery.type, delivery.message, Date.now());
      sent += 1;
      const isEpochEnd = delivery.message.$typeName === 'esper.leyline.v1.SystemStatePacket' && delivery.message.epochEnd;
      if (!isEpochEnd) continue;
      await sleep(150);
      const stage = await page
        .locator('#swimlane g.lane[data-seed-id="seed-1"]')
        .getAttribute('data-stage', { timeout: 200 })
        .catch(() => null);
      if (stage !== null) stagesSeen.add(stage);
      accuracyPoints.push(Number(await page.locator('#chart-accuracy').getAttribute('data-points')));
    }
    expect(sent).toBe(deliveries.length);
    board.alert({
      name: 'tamiyo_gnn_coverage_low',
      severity: 'warning',
      message: 'coverage below 0.6 for 3 samples',
      firedAtMs: Date.now(),
      trainingRunId: 'run-live',
    });
    const riskEvent = telemetry('run-live', 'tamiyo', [
      { description: 'loss_spike', level: TelemetryLevel.WARNING, attributes: { loss_delta: '0.8' } },
    ]);
    board.ingest(riskEvent.type, riskEvent.message, Date.now());

    // The run is listed and selected, and ended.
    await expect.poll(() => page.locator('#runs li[data-run-id="run-live"]').getAttribute('data-phase')).toBe('ended');
    await expect.poll(() => page.locator('#run-title').textContent()).toContain('run-live');
    // The accuracy curve gained points while the run trained, one per epoch in the end.
    expect(accuracyPoints.at(-1)).toBeGreaterThan(accuracyPoints[0] ?? 0);
    expect(new Set(accuracyPoints).size).toBeGreaterThanOrEqual(4);
    await expect.poll(async () => Number(await page.locator('#chart-accuracy').getAttribute('data-points'))).toBe(8);
    await expect.poll(async () => Number(await page.locator('#chart-loss').getAttribute('data-points'))).toBeGreaterThan(80);
    expect(await page.locator('#chart-loss canvas').count()).toBeGreaterThan(0);
    // The swimlane showed the seed moving through its stages live, and holds every interval.
    expect(stagesSeen.size).toBeGreaterThanOrEqual(4);
    await expect
      .poll(() =>
        page
          .locator('#swimlane g.lane[data-seed-id="seed-1"] rect.stage')
          .evaluateAll((rects) => rects.map((r) => r.getAttribute('data-stage'))),
      )
      .toEqual(['GERMINATED', 'TRAINING', 'BLENDING', 'SHADOWING', 'PROBATIONARY', 'FOSSILIZED']);
    expect(await page.locator('#swimlane').textContent()).toContain('seed-1 @ block1');
    // The command, its ack, the risk signal, the alert and Weatherlight's mode.
    expect(await page.locator('#commands tr[data-command-id="run-live-cmd-1"]').getAttribute('data-status')).toBe('APPLIED');
    expect(await page.locator('#commands').textContent()).toContain('SEED GERMINATE');
    await expect.poll(() => page.locator('#events').textContent()).toContain('loss_spike');
    await expect.poll(() => page.locator('#alerts li[data-alert="tamiyo_gnn_coverage_low"]').getAttribute('data-state')).toBe('firing');
    expect(await page.locator('#mode').getAttribute('data-mode')).toBe('operational');

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'live-view.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(failedRequests).toEqual([]);
    await page.close();
  }, 60_000);
});
