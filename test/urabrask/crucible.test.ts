import { create } from '@bufbuild/protobuf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { Crucible, HazardStatus, type HazardReport } from '../../src/urabrask/crucible.js';

const DENSE = create(SeedSiteDescriptorSchema, { siteId: 'crucible-dense', kind: SeedSiteKind.DENSE, shape: [64] });
const catalog = new KarnCatalog();
const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
const crucible = new Crucible({ catalog });

async function compile(id: string): Promise<CompiledArtifact> {
  return compiler.compile(catalog.get(id), catalog.defaultParameters(id), DENSE, { seed: 11 });
}

function show(report: HazardReport): void {
  const m = report.measurements;
  console.log(
    `[crucible] ${report.blueprintId} (${report.family}) gradNorm=${m.gradNorm.toExponential(3)} outputScale=${m.outputScaleRatio.toFixed(2)} ` +
      `nonFinite=${m.nonFiniteOutputs} latencyP50=${m.latencyP50Ms.toFixed(2)}ms memory=${m.memoryDeltaBytes}B (${m.memoryRatio.toFixed(2)}× params) ` +
      `hazards=${JSON.stringify(report.hazards)}`,
  );
}

let tensorsBefore = 0;
let safe: CompiledArtifact;
let unstable: CompiledArtifact;
let safeReport: HazardReport;
let unstableReport: HazardReport;

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
  safe = await compile('BP009');
  unstable = await compile('BP043');
  safeReport = crucible.probe(safe.bytes);
  unstableReport = crucible.probe(unstable.bytes);
  show(safeReport);
  show(unstableReport);
});

afterAll(() => {
  // Every load, probe and dispose above freed what it made.
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

describe('Crucible', () => {
  it('finds no hazard in the safe residual block BP009', () => {
    expect(safeReport.hazards).toEqual({
      nan_inf: HazardStatus.OK,
      grad_instability: HazardStatus.OK,
      output_scale: HazardStatus.OK,
      latency: HazardStatus.OK,
      memory_watermark: HazardStatus.OK,
    });
    expect(safeReport.fired).toEqual([]);
    expect(safeReport.measurements.gradNorm).toBeGreaterThan(1e-8);
    expect(safeReport.measurements.gradNorm).toBeLessThan(1e3);
  });

  it('detects gradient explosion and output blow-up in the unstable BP043 from its artifact', () => {
    expect(unstableReport.hazards.grad_instability).toBe(HazardStatus.EXPLODE);
    expect(unstableReport.hazards.output_scale).toBe(HazardStatus.BLOWUP);
    expect(unstableReport.fired).toEqual(expect.arrayContaining(['grad_instability', 'output_scale']));
    expect(unstableReport.measurements.gradNorm).toBeGreaterThan(100 * safeReport.measurements.gradNorm);
  });

  it('reports the checksum, blueprint and site of the probed artifact', () => {
    expect(safeReport.artifactChecksum).toBe(safe.checksum);
    expect(unstableReport.artifactChecksum).toBe(unstable.checksum);
    expect(safeReport.blueprintId).toBe('BP009');
    expect(safeReport.family).toBe('residual_mlp');
    expect(safeReport.siteShape).toEqual([64]);
    expect(safeReport.measurements.parameterBytes).toBeGreaterThan(0);
  });

  it('is deterministic: the same artifact gives the same gradient and scale figures', () => {
    const again = crucible.probe(unstable.bytes);
    expect(again.measurements.gradNorm).toBe(unstableReport.measurements.gradNorm);
    expect(again.measurements.outputScaleRatio).toBe(unstableReport.measurements.outputScaleRatio);
    expect(again.hazards).toEqual(unstableReport.hazards);
  });

  it('flags non-finite outputs when extreme inputs overflow float32', () => {
    // BP043's gain³ ≈ 2000 amplification pushes a 1e36 input past float32's 3.4e38.
    const report = new Crucible({ catalog, extremeMagnitudes: [1e36] }).probe(unstable.bytes);
    expect(report.hazards.nan_inf).toBe(HazardStatus.PRESENT);
    expect(report.measurements.nonFiniteOutputs).toBeGreaterThan(0);
    expect(safeReport.measurements.nonFiniteOutputs).toBe(0);
  });

  it('rejects corrupted artifact bytes without probing them', () => {
    const corrupted = Uint8Array.from(safe.bytes);
    corrupted[corrupted.length - 1] = (corrupted[corrupted.length - 1] as number) ^ 0xff;
    let caught: unknown;
    try {
      crucible.probe(corrupted);
    } catch (error) {
      caught = error;
    }
    expect(isEsperError(caught, ErrorCode.TEZZERET_ARTIFACT_INVALID)).toBe(true);
  });

  it('rejects invalid thresholds naming the field', () => {
    expect(() => new Crucible({ gradExplodeThreshold: 0 })).toThrow(/gradExplodeThreshold/);
    expect(() => new Crucible({ probeBatch: 0 })).toThrow(/probeBatch/);
  });
});
