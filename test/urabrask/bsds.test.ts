import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { timestampMs } from '@bufbuild/protobuf/wkt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/core/index.js';
import {
  BlueprintTier,
  BSDSSchema,
  HandlingClass,
  HazardBand,
  Provenance,
  ResourceProfile,
  SeedSiteDescriptorSchema,
  SeedSiteKind,
  type BlueprintDescriptor,
} from '../../src/leyline/index.js';
import { HmacSigner, KeyRing } from '../../src/security/index.js';
import { initTensorBackend, tf } from '../../src/tensor/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { TezzeretCompiler, type CompiledArtifact } from '../../src/tezzeret/index.js';
import { Crucible, HazardStatus, type HazardReport } from '../../src/urabrask/crucible.js';
import { assessHazards, BSDS_VERSION, HIGH_HAZARD_RECOMMENDATION, issueBsds } from '../../src/urabrask/bsds.js';
import { createBsdsVerifier } from '../../src/urza/index.js';
import { convWidenSite } from '../support/conv-widen-site.js';

const DENSE = create(SeedSiteDescriptorSchema, { siteId: 'bsds-dense', kind: SeedSiteKind.DENSE, shape: [64] });
const CONV = create(SeedSiteDescriptorSchema, { siteId: 'bsds-conv', kind: SeedSiteKind.CONV, shape: [8, 8, 16] });
const WIDEN = create(SeedSiteDescriptorSchema, { siteId: 'bsds-widen', kind: SeedSiteKind.WIDEN, shape: [64], outputShape: [10] });
const WIDEN_CONV = convWidenSite([8, 8, 4], [10]);
const catalog = new KarnCatalog();
const compiler = new TezzeretCompiler({ catalog, prewarmSamples: 1 });
const crucible = new Crucible({ catalog });
const clock = new FakeClock();
const ring = new KeyRing([
  { keyId: 'urabrask-2026', secret: new TextEncoder().encode('urabrask-test-secret-0123456789') },
  { keyId: 'old', secret: new TextEncoder().encode('another-test-secret-9876543210') },
]);
const signer = new HmacSigner(ring, { clock });

let tensorsBefore = 0;
let safe: { artifact: CompiledArtifact; report: HazardReport };
let unstable: { artifact: CompiledArtifact; report: HazardReport };

async function probe(id: string): Promise<{ artifact: CompiledArtifact; report: HazardReport }> {
  const site = [DENSE, CONV, WIDEN, WIDEN_CONV].find((s) => catalog.familyOf(id).fits(s)) ?? DENSE;
  const artifact = await compiler.compile(catalog.get(id), catalog.defaultParameters(id), site, { seed: 5 });
  return { artifact, report: crucible.probe(artifact.bytes) };
}

beforeAll(async () => {
  await initTensorBackend();
  tensorsBefore = tf.memory().numTensors;
  safe = await probe('BP009');
  unstable = await probe('BP043');
});

afterAll(() => {
  expect(tf.memory().numTensors).toBe(tensorsBefore);
});

function figures(report: HazardReport, bsds: { riskScore: number; hazardBand: HazardBand; handlingClass: HandlingClass }): string {
  const m = report.measurements;
  return (
    `[bsds] ${report.blueprintId} (${report.family}) site=[${report.siteShape.join(',')}] gradNorm=${m.gradNorm.toExponential(3)} ` +
    `outputRatio=${m.outputScaleRatio.toExponential(3)} fired=[${report.fired.join(',')}] risk=${bsds.riskScore.toFixed(3)} ` +
    `band=${HazardBand[bsds.hazardBand]} handling=${HandlingClass[bsds.handlingClass]}`
  );
}

describe('band rule: the band comes from the measurements', () => {
  it('gives every SAFE family representative a LOW band with STANDARD handling, whatever its prior', async () => {
    const representatives = new Map<string, BlueprintDescriptor>();
    for (const descriptor of catalog.list()) {
      if (descriptor.tier === BlueprintTier.SAFE && !representatives.has(descriptor.family))
        representatives.set(descriptor.family, descriptor);
    }
    expect(representatives.size).toBeGreaterThanOrEqual(12);
    // The self-attention representative BP019 carries the highest SAFE prior (0.5).
    expect(Math.max(...[...representatives.values()].map((d) => d.risk))).toBeCloseTo(0.5, 6);
    for (const descriptor of representatives.values()) {
      const { report } = await probe(descriptor.blueprintId);
      const bsds = issueBsds(signer, descriptor, report, { clock });
      const assessment = assessHazards(descriptor, report);
      console.log(`${figures(report, bsds)} prior=${assessment.priorRisk.toFixed(2)} measured=${assessment.measuredScore.toFixed(3)}`);
      expect(report.fired).toEqual([]);
      expect(bsds.hazardBand).toBe(HazardBand.LOW);
      expect(bsds.handlingClass).toBe(HandlingClass.STANDARD);
      expect(assessment.measuredScore).toBe(0);
      // The prior is recorded in the score but kept below the MEDIUM threshold.
      expect(bsds.riskScore).toBeCloseTo(Math.min(descriptor.risk, 0.29), 6);
      expect(bsds.riskScore).toBeLessThan(0.3);
    }
  }, 30_000);

  it('certifies the GradMax and random widenings BP052–BP055 and the channel widening BP056 like BP051: LOW band, STANDARD handling', async () => {
    for (const id of ['BP051', 'BP052', 'BP053', 'BP054', 'BP055', 'BP056']) {
      const { report } = await probe(id);
      const bsds = issueBsds(signer, catalog.get(id), report, { clock });
      console.log(figures(report, bsds));
      expect(report.fired, id).toEqual([]);
      expect([bsds.hazardBand, bsds.handlingClass], id).toEqual([HazardBand.LOW, HandlingClass.STANDARD]);
    }
  });

  it('gives the unstable BP043 HIGH or CRITICAL from its measured gradient explosion and output blow-up', () => {
    const bsds = issueBsds(signer, catalog.get('BP043'), unstable.report, { clock });
    const assessment = assessHazards(catalog.get('BP043'), unstable.report);
    console.log(
      `${figures(unstable.report, bsds)} prior=${assessment.priorRisk.toFixed(2)} measured=${assessment.measuredScore.toFixed(3)}`,
    );
    expect(unstable.report.hazards.grad_instability).toBe(HazardStatus.EXPLODE);
    expect(unstable.report.hazards.output_scale).toBe(HazardStatus.BLOWUP);
    expect(assessment.measuredScore).toBeGreaterThanOrEqual(0.7);
    expect([HazardBand.HIGH, HazardBand.CRITICAL]).toContain(bsds.hazardBand);
    // quarantine_only (HIGH_RISK tier) keeps QUARANTINE handling.
    expect(catalog.get('BP043').quarantineOnly).toBe(true);
    expect(bsds.handlingClass).toBe(HandlingClass.QUARANTINE);
  });

  it('weighs how far a hazard overshot: a marginal explosion alone is MEDIUM, a tenfold one more', () => {
    const base: HazardReport = {
      ...safe.report,
      hazards: { ...safe.report.hazards, grad_instability: HazardStatus.EXPLODE },
      fired: ['grad_instability'],
    };
    const at = (gradNorm: number): number =>
      assessHazards(catalog.get('BP009'), { ...base, measurements: { ...base.measurements, gradNorm } }).measuredScore;
    expect(at(base.thresholds.gradExplode * 1.0001)).toBeCloseTo(0.4, 3);
    expect(at(base.thresholds.gradExplode * 10)).toBeCloseTo(0.6, 6);
    expect(at(base.thresholds.gradExplode * 1e6)).toBeCloseTo(0.6, 6);
    expect(at(Number.POSITIVE_INFINITY)).toBeCloseTo(0.6, 6);
  });

  it('lets a non-SAFE prior at the HIGH threshold tighten handling but not the band', () => {
    const experimental: BlueprintDescriptor = {
      ...catalog.get('BP009'),
      tier: BlueprintTier.EXPERIMENTAL,
      risk: 0.8,
      quarantineOnly: false,
    };
    const assessment = assessHazards(experimental, safe.report);
    expect(assessment.hazardBand).toBe(HazardBand.LOW);
    expect(assessment.handlingClass).toBe(HandlingClass.RESTRICTED);
    expect(assessment.riskScore).toBeCloseTo(0.29, 6);
    expect(assessHazards({ ...experimental, quarantineOnly: true }, safe.report).handlingClass).toBe(HandlingClass.QUARANTINE);
  });
});

describe('BSDS from crucible measurements', () => {
  it('gives the safe BP009 a LOW band with STANDARD handling', () => {
    const bsds = issueBsds(signer, catalog.get('BP009'), safe.report, { clock });
    expect(bsds.hazardBand).toBe(HazardBand.LOW);
    expect(bsds.handlingClass).toBe(HandlingClass.STANDARD);
    expect(bsds.recommendation).toBe('');
    expect(bsds.version).toBe(BSDS_VERSION);
    expect(bsds.provenance).toBe(Provenance.URABRASK);
    expect(bsds.resourceProfile).toBe(ResourceProfile.MIXED);
    expect(bsds.blueprintId).toBe('BP009');
    expect(timestampMs(bsds.issuedAt!)).toBe(clock.wallMs());
    // The prior (0.3) capped just below MEDIUM: no hazard fired.
    expect(bsds.riskScore).toBeCloseTo(0.29, 6);
  });

  it('gives the unstable BP043 a HIGH or CRITICAL band and RESTRICTED or QUARANTINE handling, naming the fired hazards', () => {
    const bsds = issueBsds(signer, catalog.get('BP043'), unstable.report, { clock });
    console.log(
      `[bsds] BP043 risk=${bsds.riskScore.toFixed(3)} band=${HazardBand[bsds.hazardBand]} handling=${HandlingClass[bsds.handlingClass]} rec="${bsds.recommendation}"`,
    );
    expect(unstable.report.hazards.grad_instability).toBe(HazardStatus.EXPLODE);
    expect([HazardBand.HIGH, HazardBand.CRITICAL]).toContain(bsds.hazardBand);
    expect([HandlingClass.RESTRICTED, HandlingClass.QUARANTINE]).toContain(bsds.handlingClass);
    expect(bsds.riskScore).toBeLessThanOrEqual(1);
    expect(bsds.recommendation.startsWith(HIGH_HAZARD_RECOMMENDATION)).toBe(true);
    expect(bsds.recommendation).toContain('grad_instability=explode');
  });

  it('bands BP043 HIGH or CRITICAL from the probes alone when its risk prior and flags are cleared', () => {
    const neutral: BlueprintDescriptor = { ...catalog.get('BP043'), risk: 0, tier: BlueprintTier.SAFE, quarantineOnly: false };
    const assessment = assessHazards(neutral, unstable.report);
    console.log(`[bsds] BP043 without prior risk=${assessment.riskScore.toFixed(3)} band=${HazardBand[assessment.hazardBand]}`);
    expect([HazardBand.HIGH, HazardBand.CRITICAL]).toContain(assessment.hazardBand);
    expect(assessment.riskScore).toBe(assessment.measuredScore);
    expect(assessment.handlingClass).toBe(
      assessment.hazardBand === HazardBand.CRITICAL ? HandlingClass.QUARANTINE : HandlingClass.RESTRICTED,
    );
    // The same neutral descriptor with BP009's clean report stays LOW.
    expect(assessHazards({ ...neutral, blueprintId: 'BP009' }, safe.report).hazardBand).toBe(HazardBand.LOW);
  });

  it('stamps the checksum of the artifact the crucible probed', () => {
    expect(issueBsds(signer, catalog.get('BP009'), safe.report).artifactChecksum).toBe(safe.artifact.checksum);
    expect(issueBsds(signer, catalog.get('BP043'), unstable.report).artifactChecksum).toBe(unstable.artifact.checksum);
  });

  it('marks memory-heavy modules and follows the resource hint otherwise', () => {
    const heavy: HazardReport = {
      ...safe.report,
      hazards: { ...safe.report.hazards, memory_watermark: HazardStatus.HIGH },
      fired: ['memory_watermark'],
    };
    expect(assessHazards(catalog.get('BP009'), heavy, { resourceHint: 'gpu' }).resourceProfile).toBe(ResourceProfile.MEMORY_HEAVY);
    // Memory growth at the threshold counts 0.2 (severity 1): LOW, prior capped at 0.29.
    expect(assessHazards(catalog.get('BP009'), heavy).measuredScore).toBeCloseTo(0.2, 6);
    expect(assessHazards(catalog.get('BP009'), safe.report, { resourceHint: 'CUDA' }).resourceProfile).toBe(ResourceProfile.GPU);
    expect(assessHazards(catalog.get('BP009'), safe.report, { resourceHint: 'io' }).resourceProfile).toBe(ResourceProfile.IO_HEAVY);
  });

  it('rejects a report of another blueprint', () => {
    expect(() => assessHazards(catalog.get('BP009'), unstable.report)).toThrow(/BP043/);
  });
});

describe('signing', () => {
  it('signs every sheet with the active key so that the ring verifies it, also after a binary round trip', () => {
    const bsds = issueBsds(signer, catalog.get('BP043'), unstable.report, { clock });
    const verifier = createBsdsVerifier(ring);
    expect(bsds.security?.keyId).toBe('urabrask-2026');
    expect(verifier.verify(bsds)).toEqual({ ok: true });
    expect(verifier.verify(fromBinary(BSDSSchema, toBinary(BSDSSchema, bsds)))).toEqual({ ok: true });
    expect(verifier.verify({ ...bsds, artifactChecksum: safe.artifact.checksum }).ok).toBe(false);
  });
});
