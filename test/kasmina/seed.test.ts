/** The seed record's gradient statistics. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_BLEND_PLAN } from '../../src/kasmina/blending.js';
import { meanGradientNorm, newSeed, recordGradientNorm } from '../../src/kasmina/seed.js';
import { SeedLifecycleStage, SeedSiteDescriptorSchema } from '../../src/leyline/index.js';
import { create } from '@bufbuild/protobuf';

describe('seed gradient statistics', () => {
  it('averages the finite norms, remembers the last one, and marks a non-finite one for good', () => {
    const site = create(SeedSiteDescriptorSchema, { siteId: 'h', shape: [4] });
    const seed = newSeed({
      seedId: 's',
      siteId: 'h',
      site,
      blueprintId: 'BP001',
      commandId: 'c',
      germinatedEpoch: 0,
      plan: DEFAULT_BLEND_PLAN,
      lossAtGermination: undefined,
    });
    expect(seed.lifecycle.stage).toBe(SeedLifecycleStage.SEED_STAGE_DORMANT);
    expect(meanGradientNorm(seed.gradients)).toBe(0);
    recordGradientNorm(seed.gradients, 1);
    recordGradientNorm(seed.gradients, Number.NaN);
    recordGradientNorm(seed.gradients, 3);
    expect(meanGradientNorm(seed.gradients)).toBe(2);
    expect(seed.gradients).toMatchObject({ count: 2, finite: false, last: 3 });
  });
});
