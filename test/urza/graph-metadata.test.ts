import { create } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, type PersistedStateError } from '../../src/core/index.js';
import { BSDSSchema, HazardBand, SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { initTensorBackend } from '../../src/tensor/index.js';
import { decodeArtifact, TezzeretCompiler, type ArtifactHeader } from '../../src/tezzeret/index.js';
import { buildGraphMetadata, GRAPH_MONITOR_DEFAULTS, parseGraphMetadata } from '../../src/urza/graph-metadata.js';
import { convWidenSite } from '../support/conv-widen-site.js';

const DENSE = create(SeedSiteDescriptorSchema, { siteId: 'gm-dense', kind: SeedSiteKind.DENSE, shape: [64] });
const CONV = create(SeedSiteDescriptorSchema, { siteId: 'gm-conv', kind: SeedSiteKind.CONV, shape: [8, 8, 16] });
const WIDEN = create(SeedSiteDescriptorSchema, { siteId: 'gm-widen', kind: SeedSiteKind.WIDEN, shape: [64], outputShape: [10] });
const WIDEN_CONV = convWidenSite([8, 8, 4], [10]);
const catalog = new KarnCatalog();
const headers = new Map<string, ArtifactHeader>();

beforeAll(async () => {
  await initTensorBackend();
  const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
  for (const [id, site] of [
    ['BP010', DENSE],
    ['BP009', DENSE],
    ['BP016', CONV],
    ['BP051', WIDEN],
    ['BP052', WIDEN],
    ['BP056', WIDEN_CONV],
  ] as const) {
    const artifact = await compiler.compile(catalog.get(id), catalog.defaultParameters(id), site, { seed: 2 });
    headers.set(id, decodeArtifact(artifact.bytes).header);
  }
});

describe('buildGraphMetadata', () => {
  it('lists one layer per artifact variable with shape and parameter count, chained in variable order', () => {
    const header = headers.get('BP010')!;
    const metadata = buildGraphMetadata(catalog.get('BP010'), header);
    expect(metadata.layers.map((l) => l.name)).toEqual(header.variables.map((v) => v.name));
    expect(metadata.layers[0]).toMatchObject({ layerId: 'BP010-L0', name: 'router/w', shape: [64, 3], parameterCount: 192 });
    expect(metadata.parameters.count).toBe(metadata.layers.reduce((s, l) => s + l.parameterCount, 0));
    expect(metadata.parameters.bytes).toBe(4 * metadata.parameters.count);
    expect(metadata.adjacency).toEqual(metadata.layers.slice(1).map((_, i) => [i, i + 1]));
    expect(metadata.adjacency.length).toBeGreaterThan(0);
    expect(metadata.activations.map((a) => a.kind)).toEqual(['softmax', 'relu']);
    expect(metadata.parameters.allowed).toEqual([{ name: 'branches', min: 2, max: 4, span: 2, value: header.parameters.branches }]);
  });

  it('names the site kinds the family fits and the blend modes it allows', () => {
    const dense = buildGraphMetadata(catalog.get('BP009'), headers.get('BP009')!).capabilities;
    expect(dense.siteKinds).toEqual(['DENSE', 'CONV']);
    expect(dense.compiledSite).toEqual({ kind: headers.get('BP009')!.site.kind, shape: [64] });
    expect(dense.allowedBlendModes).toEqual(['CONVEX', 'RESIDUAL', 'CHANNEL', 'CONFIDENCE']);
    const conv = buildGraphMetadata(catalog.get('BP016'), headers.get('BP016')!).capabilities;
    expect(conv.siteKinds).toEqual(['CONV']);
    expect(conv.inputShape).toEqual(conv.outputShape);
    const widen = buildGraphMetadata(catalog.get('BP051'), headers.get('BP051')!).capabilities;
    expect(widen.siteKinds).toEqual(['WIDEN']);
    expect([widen.inputShape, widen.outputShape]).toEqual([
      [1, 64],
      [1, 10],
    ]);
    expect(widen.allowedBlendModes).toEqual(['RESIDUAL']);
    // GradMax widening compiles to the same capabilities (the init is a knob of the family).
    expect(buildGraphMetadata(catalog.get('BP052'), headers.get('BP052')!).capabilities).toEqual(widen);
    // Channel widening fits the WIDEN kind at its compiled conv path (the probe carries it).
    const widenConv = buildGraphMetadata(catalog.get('BP056'), headers.get('BP056')!).capabilities;
    expect([widenConv.siteKinds, widenConv.inputShape, widenConv.outputShape, widenConv.allowedBlendModes]).toEqual([
      ['WIDEN'],
      [1, 8, 8, 4],
      [1, 10],
      ['RESIDUAL'],
    ]);
  });

  it('watches gradient norm, output scale and latency, tightened by a HIGH band that also restricts blending', () => {
    const plain = buildGraphMetadata(catalog.get('BP009'), headers.get('BP009')!);
    expect(plain.monitors).toEqual([
      { metric: 'gradient_norm', threshold: GRAPH_MONITOR_DEFAULTS.gradientNorm, source: 'default' },
      { metric: 'output_scale', threshold: GRAPH_MONITOR_DEFAULTS.outputScale, source: 'default' },
      { metric: 'latency_ms', threshold: GRAPH_MONITOR_DEFAULTS.latencyMs, source: 'default' },
    ]);
    const bsds = create(BSDSSchema, { blueprintId: 'BP009', hazardBand: HazardBand.HIGH });
    const tight = buildGraphMetadata(catalog.get('BP009'), headers.get('BP009')!, { bsds });
    expect(tight.monitors.map((m) => m.threshold)).toEqual([250, 25, 62.5]);
    expect(tight.monitors.every((m) => m.source === 'bsds' && m.hazardBand === 'HIGH')).toBe(true);
    expect(tight.capabilities.allowedBlendModes).toEqual(['CONVEX']);
  });

  it('survives a JSON round trip and rejects a header or sheet of another blueprint', () => {
    const metadata = buildGraphMetadata(catalog.get('BP009'), headers.get('BP009')!);
    expect(parseGraphMetadata(JSON.stringify(metadata))).toEqual(metadata);
    expect(() => buildGraphMetadata(catalog.get('BP010'), headers.get('BP009')!)).toThrow(
      expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }),
    );
    expect(() =>
      buildGraphMetadata(catalog.get('BP009'), headers.get('BP009')!, { bsds: create(BSDSSchema, { blueprintId: 'BP001' }) }),
    ).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
  });

  it('names every path of stored metadata that breaks the layout', () => {
    const json = JSON.stringify(buildGraphMetadata(catalog.get('BP009'), headers.get('BP009')!));
    const failure = (text: string): unknown => {
      try {
        parseGraphMetadata(text);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const [text, path] of [
      ['{"version":1,', '$'],
      [json.replace('"version":1', '"version":99'), '$.version'],
      [json.replace('"source":"tezzeret"', '"source":"elsewhere"'), '$.source'],
      [json.replace(/"threshold":[0-9.e+]+/, '"threshold":"high"'), '$.monitors[0].threshold'],
      [json.replace('"adjacency":[', '"adjacency":[[0,"x"],'), '$.adjacency[0][1]'],
      [json.replace('"family":', '"extra":1,"family":'), '$'],
    ] as const) {
      const error = failure(text);
      expect(isEsperError(error, ErrorCode.DECODE_FAILED), text.slice(0, 40)).toBe(true);
      expect((error as PersistedStateError).issues.map((issue) => issue.path)).toEqual([path]);
    }
  });
});
