/**
 * report.html as text: self-contained (uPlot inlined, nothing fetched), the run's data
 * embedded safely, the summary escaped, and the swimlane drawn with each stage's span.
 */
import { describe, expect, it } from 'vitest';
import { loadReportAssets, renderReportHtml, renderSwimlaneSvg, stageSpans } from '../../../src/nissa/index.js';
import { sampleReportData } from '../fixtures/report-data.js';

describe('renderReportHtml', () => {
  it('inlines uPlot and references nothing outside the page', async () => {
    const assets = await loadReportAssets();
    const html = renderReportHtml(sampleReportData(), assets);
    expect(assets.uplotJs.length).toBeGreaterThan(10_000);
    expect(html).toContain(assets.uplotJs.slice(0, 200));
    expect(html).toContain(assets.uplotCss.slice(0, 100));
    expect(html).not.toMatch(/<script[^>]*\ssrc=/i);
    expect(html).not.toMatch(/<link[^>]*\shref=/i);
    expect(html).not.toMatch(/url\(\s*['"]?(https?:)?\/\//i);
  });

  it('embeds the data so that no value can end its script element, and escapes the summary', async () => {
    const data = { ...sampleReportData(), title: 'run </script><b>x</b>' };
    const html = renderReportHtml(data, await loadReportAssets());
    const json = /<script type="application\/json" id="esper-report-data">(.*?)<\/script>/s.exec(html)?.[1];
    expect(JSON.parse(json ?? '')).toEqual(data);
    expect(html).toContain('<li>grown: 91.00 % &lt;final&gt; &amp; done</li>');
    expect(html).toContain('<h1>run &lt;/script&gt;&lt;b&gt;x&lt;/b&gt;</h1>');
  });
});

describe('the seed swimlane', () => {
  it('spans each stage to the next one; a fossil lasts to the end, a culled seed ends when it is dormant again', () => {
    const [fossil, culled, training] = sampleReportData().seeds;
    expect(stageSpans(fossil!, 240).map((s) => [s.stage, s.fromStep, s.toStep])).toEqual([
      ['GERMINATED', 80, 81],
      ['TRAINING', 81, 140],
      ['BLENDING', 140, 180],
      ['SHADOWING', 180, 200],
      ['PROBATIONARY', 200, 220],
      ['FOSSILIZED', 220, 240],
    ]);
    expect(stageSpans(culled!, 240).slice(2)).toEqual([
      { stage: 'CULLED', fromStep: 170, toStep: 170 },
      { stage: 'EMBARGOED', fromStep: 170, toStep: 230 },
      { stage: 'RESETTING', fromStep: 230, toStep: 230 },
      { stage: 'DORMANT', fromStep: 230, toStep: 230 },
    ]);
    expect(stageSpans(training!, 240).at(-1)).toEqual({ stage: 'TRAINING', fromStep: 226, toStep: 240 });
  });

  it('draws one lane per seed with its site, stages, fate and contribution', () => {
    const { seeds, totalSteps } = sampleReportData();
    const svg = renderSwimlaneSvg(seeds, totalSteps);
    expect(svg.match(/<g class="lane"/g)).toHaveLength(3);
    // Every span that lasts, and the cull; not the instants of resetting and dormancy.
    expect(svg.match(/<rect class="stage"/g)).toHaveLength(12);
    expect(svg).not.toContain('data-stage="DORMANT"');
    expect(svg).toContain('seed-1 <tspan class="site">@ dense_0</tspan>');
    expect(svg).toContain('FOSSILIZED @ 220 · +3.12 pts');
    expect(svg).toContain('CULLED (negative_contribution) @ 170 · -0.40 pts');
    expect(svg).toContain('TRAINING @ 226 · —');
    expect(svg).toContain('<title>seed-2 (residual-4) TRAINING: steps 121–170</title>');
  });

  it('says so when no seed grew', () => {
    expect(renderSwimlaneSvg([], 100)).toContain('No seed was germinated.');
  });
});
