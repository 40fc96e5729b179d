import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { isWidenSite, SeedSiteDescriptorSchema, SeedSiteKind, siteOutputShape } from '../../src/leyline/index.js';

describe('siteOutputShape', () => {
  it('is the site shape when output_shape is empty (DENSE, CONV)', () => {
    const site = create(SeedSiteDescriptorSchema, { kind: SeedSiteKind.CONV, shape: [4, 4, 8] });
    expect(siteOutputShape(site)).toEqual([4, 4, 8]);
    expect(isWidenSite(site)).toBe(false);
  });

  it('is output_shape when set (WIDEN)', () => {
    const site = create(SeedSiteDescriptorSchema, { kind: SeedSiteKind.WIDEN, shape: [784], outputShape: [10] });
    expect(siteOutputShape(site)).toEqual([10]);
    expect(isWidenSite(site)).toBe(true);
  });
});
