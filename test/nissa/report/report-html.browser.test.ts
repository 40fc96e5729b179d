/**
 * report.html in real headless Chromium (Debian's, via playwright-core), opened as a file
 * with every off-machine request blocked: both charts drawn with both arms, the swimlane
 * shown, no JavaScript error and no failed request. Saves test-artifacts/report-html.png.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReportHtml } from '../../../src/nissa/index.js';
import { launchChromium, watchedPage } from '../../support/chromium.js';
import { sampleReportData } from '../fixtures/report-data.js';

const ARTIFACTS = path.resolve(import.meta.dirname, '../../../test-artifacts');

let root: string;
let browser: Browser;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'esper-report-html-'));
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await rm(root, { recursive: true, force: true });
});

interface ChartState {
  readonly title: string;
  readonly series: number;
  readonly points: number;
  /** Canvas pixels that are not transparent. */
  readonly inkedPixels: number;
}

describe('report.html in Chromium', () => {
  it('shows grown and static curves and the swimlane offline, with no error and no failed request', async () => {
    const file = path.join(root, 'report.html');
    await writeReportHtml(file, sampleReportData());
    const { page, errors, failedRequests } = await watchedPage(browser, { offline: true });
    await page.setViewportSize({ width: 1024, height: 1400 });
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => (globalThis as unknown as { esperCharts?: unknown[] }).esperCharts?.length === 2);

    const charts = await page.evaluate((): ChartState[] => {
      // The slice of a uPlot instance read here (the test compiles without DOM types).
      interface UPlotLike {
        root: { querySelector(selector: string): { textContent: string | null } | null };
        series: unknown[];
        data: unknown[][];
        ctx: {
          canvas: { width: number; height: number };
          getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
        };
      }
      return (globalThis as unknown as { esperCharts: UPlotLike[] }).esperCharts.map((u) => {
        const { width, height } = u.ctx.canvas;
        const pixels = u.ctx.getImageData(0, 0, width, height).data;
        let inked = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) inked++;
        return {
          title: u.root.querySelector('.u-title')?.textContent ?? '',
          series: u.series.length,
          points: u.data[0]?.length ?? 0,
          inkedPixels: inked,
        };
      });
    });
    expect(charts.map((c) => c.title)).toEqual(['Validation accuracy', 'Loss']);
    // x + grown + static; the loss chart has validation and train loss for each arm.
    expect(charts.map((c) => c.series)).toEqual([3, 5]);
    for (const chart of charts) {
      expect(chart.points).toBe(6);
      expect(chart.inkedPixels).toBeGreaterThan(1_000);
    }
    const legend = await page.locator('#chart-accuracy .u-legend').innerText();
    expect(legend).toContain('grown');
    expect(legend).toContain('static baseline');

    expect(await page.locator('svg.swimlane g.lane').count()).toBe(3);
    expect(await page.locator('svg.swimlane rect.stage[data-stage="FOSSILIZED"]').count()).toBe(1);
    const box = await page.locator('svg.swimlane').boundingBox();
    expect(box?.width).toBeGreaterThan(500);
    await expect(page.locator('ul.summary li').first().innerText()).resolves.toContain('mlp 16-16 on spirals');

    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'report-html.png'), fullPage: true });
    expect(errors).toEqual([]);
    expect(failedRequests).toEqual([]);
    await page.close();
  });
});
