/**
 * `report.html`: one self-contained page — uPlot and the run's data inlined, no request
 * leaves the file — with grown vs static validation accuracy and loss per epoch, the seed
 * swimlane (inline SVG drawn here) and the run's summary lines.
 */
import { writeFile } from 'node:fs/promises';
import { CHART_SCRIPT } from './chart-script.js';
import { loadReportAssets, type ReportAssets } from './report-assets.js';
import type { RunReportData } from './report-data.js';
import { escapeXml, renderStageLegend, renderSwimlaneSvg } from './swimlane-svg.js';

const PAGE_CSS = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
ul.summary { padding-left: 18px; }
.chart { margin: 12px 0; min-height: 300px; }
svg.swimlane { font: 12px system-ui, sans-serif; max-width: 100%; height: auto; }
svg.swimlane .axis-title, svg.swimlane .tick { fill: #666; }
svg.swimlane .site { fill: #888; }
svg.swimlane line.axis { stroke: #999; }
svg.swimlane line.epoch { stroke: #eee; }
svg.swimlane rect.stage { stroke: #fff; stroke-width: 0.5; }
ul.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 12px; }
ul.legend .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -2px; }
footer { margin-top: 32px; color: #888; font-size: 12px; }
`;

/** JSON safe inside a `<script>` element (no `</script>`, no `<!--`). */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

/** Script text safe inside a `<script>` element. */
function scriptText(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1');
}

/** The page's HTML, given uPlot's files ({@link loadReportAssets}). */
export function renderReportHtml(data: RunReportData, assets: ReportAssets): string {
  const grown = data.arms[0];
  const epochEnds = grown?.epochs.map((e) => e.globalStep) ?? [];
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeXml(data.title)}</title>
<style>${assets.uplotCss.replace(/<\//g, '<\\/')}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<h1>${escapeXml(data.title)}</h1>
<ul class="summary">
${data.summaryLines.map((line) => `<li>${escapeXml(line)}</li>`).join('\n')}
</ul>
<h2>Validation accuracy and loss per epoch</h2>
<div id="chart-accuracy" class="chart"></div>
<div id="chart-loss" class="chart"></div>
<h2>Seeds</h2>
<div id="swimlane">
${renderSwimlaneSvg(data.seeds, data.totalSteps, epochEnds)}
${data.seeds.length === 0 ? '' : renderStageLegend(data.seeds, data.totalSteps)}
</div>
<footer>Esper run ${escapeXml(data.runId)} · charts by uPlot (inlined; this page makes no request).</footer>
<script type="application/json" id="esper-report-data">${scriptJson(data)}</script>
<script>${scriptText(assets.uplotJs)}</script>
<script>${scriptText(CHART_SCRIPT)}</script>
</body>
</html>
`;
}

/**
 * Writes `report.html` to `file`.
 * @throws EsperError `NISSA_REPORT_ASSET_MISSING` when uPlot cannot be read; Node's error (which names the file) when it cannot be written
 */
export async function writeReportHtml(file: string, data: RunReportData): Promise<void> {
  await writeFile(file, renderReportHtml(data, await loadReportAssets()));
}
