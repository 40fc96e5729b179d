/**
 * The seed swimlane as inline SVG, drawn on the server: one lane per seed, its lifecycle
 * stages as coloured spans along the step axis, its fate and contribution at the right.
 */
import type { ReportSeed } from './report-data.js';

/** Fill of each lifecycle stage; an unknown stage is grey. */
export const STAGE_COLOURS: Readonly<Record<string, string>> = {
  DORMANT: '#e7e7e7',
  GERMINATED: '#aec7e8',
  TRAINING: '#1f77b4',
  BLENDING: '#17becf',
  SHADOWING: '#9467bd',
  PROBATIONARY: '#bcbd22',
  FOSSILIZED: '#2ca02c',
  CULLED: '#d62728',
  EMBARGOED: '#7f7f7f',
  RESETTING: '#c7c7c7',
  TERMINATED: '#555555',
};

const UNKNOWN_COLOUR = '#999999';
const WIDTH = 1000;
const LABEL_WIDTH = 180;
const FATE_WIDTH = 320;
const LANE_HEIGHT = 26;
const TOP = 24;
const AXIS_HEIGHT = 28;

/** Text safe inside HTML or SVG content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);
}

/** One stage's span of a seed: from its step to the next stage's (or the end). */
export interface StageSpan {
  readonly stage: string;
  readonly fromStep: number;
  readonly toStep: number;
}

/** Stages that end a seed's lane: nothing of it is left to draw after them. */
const END_STAGES: ReadonlySet<string> = new Set(['CULLED', 'DORMANT', 'TERMINATED']);

/**
 * A seed's stages as spans, each until the next stage. The last one lasts until
 * `totalSteps`, unless it ends the seed (culled, back to dormant, terminated).
 */
export function stageSpans(seed: ReportSeed, totalSteps: number): StageSpan[] {
  return seed.stages.map((s, i) => {
    const next = seed.stages[i + 1];
    const end = next?.step ?? (END_STAGES.has(s.stage) ? s.step : Math.max(s.step, totalSteps));
    return { stage: s.stage, fromStep: s.step, toStep: end };
  });
}

/** The spans drawn: those that last, and the moment a seed was culled. */
function drawnSpans(seed: ReportSeed, totalSteps: number): StageSpan[] {
  return stageSpans(seed, totalSteps).filter((span) => span.toStep > span.fromStep || span.stage === 'CULLED');
}

/** `+1.23 pts`, or an em dash when unmeasured. */
export function formatContribution(contribution: number | undefined): string {
  if (contribution === undefined) return '—';
  return `${contribution >= 0 ? '+' : ''}${(contribution * 100).toFixed(2)} pts`;
}

function niceTickStep(span: number): number {
  const raw = span / 8;
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/**
 * The swimlane SVG (an `<svg>` element's markup), or a short paragraph when no seed grew.
 * @param epochEndSteps - steps at which epochs ended, drawn as faint vertical lines
 */
export function renderSwimlaneSvg(seeds: readonly ReportSeed[], totalSteps: number, epochEndSteps: readonly number[] = []): string {
  if (seeds.length === 0) return '<p class="swimlane-empty">No seed was germinated.</p>';
  const steps = Math.max(1, totalSteps, ...seeds.flatMap((s) => s.stages.map((t) => t.step)));
  const plotWidth = WIDTH - LABEL_WIDTH - FATE_WIDTH;
  const x = (step: number): number => LABEL_WIDTH + (Math.min(step, steps) / steps) * plotWidth;
  const height = TOP + seeds.length * LANE_HEIGHT + AXIS_HEIGHT;
  const axisY = TOP + seeds.length * LANE_HEIGHT;
  const parts: string[] = [
    `<svg class="swimlane" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label="Seed swimlane">`,
    `<text x="${LABEL_WIDTH}" y="14" class="axis-title">step →</text>`,
    `<text x="${WIDTH - FATE_WIDTH + 8}" y="14" class="axis-title">fate · contribution</text>`,
  ];
  for (const step of epochEndSteps) {
    if (step > 0 && step <= steps) {
      parts.push(`<line class="epoch" x1="${x(step).toFixed(1)}" x2="${x(step).toFixed(1)}" y1="${TOP}" y2="${axisY}" />`);
    }
  }
  seeds.forEach((seed, lane) => {
    const y = TOP + lane * LANE_HEIGHT;
    parts.push(
      `<g class="lane" data-seed="${escapeXml(seed.seedId)}">`,
      `<text x="4" y="${y + 17}" class="lane-label">${escapeXml(seed.seedId)} <tspan class="site">@ ${escapeXml(seed.siteId)}</tspan></text>`,
    );
    // The cull is drawn last, so that the embargo starting at the same step does not hide it.
    const spans = drawnSpans(seed, steps).sort((a, b) => Number(a.stage === 'CULLED') - Number(b.stage === 'CULLED'));
    for (const span of spans) {
      const colour = STAGE_COLOURS[span.stage] ?? UNKNOWN_COLOUR;
      const left = x(span.fromStep);
      const width = Math.max(x(span.toStep) - left, 3);
      parts.push(
        `<rect class="stage" data-stage="${escapeXml(span.stage)}" x="${left.toFixed(1)}" y="${y + 4}" width="${width.toFixed(1)}" height="${LANE_HEIGHT - 8}" fill="${colour}">` +
          `<title>${escapeXml(`${seed.seedId} (${seed.blueprintId}) ${span.stage}: steps ${span.fromStep}–${span.toStep}`)}</title></rect>`,
      );
    }
    const fate = `${seed.fate}${seed.fateReason === '' ? '' : ` (${seed.fateReason})`} @ ${seed.fateStep} · ${formatContribution(seed.contribution)}`;
    parts.push(`<text x="${WIDTH - FATE_WIDTH + 8}" y="${y + 17}" class="fate">${escapeXml(fate)}</text>`, '</g>');
  });
  const tick = niceTickStep(steps);
  parts.push(`<line class="axis" x1="${LABEL_WIDTH}" x2="${LABEL_WIDTH + plotWidth}" y1="${axisY}" y2="${axisY}" />`);
  for (let step = 0; step <= steps; step += tick) {
    parts.push(`<text class="tick" x="${x(step).toFixed(1)}" y="${axisY + 16}" text-anchor="middle">${step}</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** The legend of stage colours, as HTML. */
export function renderStageLegend(seeds: readonly ReportSeed[], totalSteps: number): string {
  const seen = [...new Set(seeds.flatMap((s) => drawnSpans(s, totalSteps).map((t) => t.stage)))];
  return `<ul class="legend">${seen
    .map((stage) => `<li><span class="swatch" style="background:${STAGE_COLOURS[stage] ?? UNKNOWN_COLOUR}"></span>${escapeXml(stage)}</li>`)
    .join('')}</ul>`;
}
