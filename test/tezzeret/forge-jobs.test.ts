import { create } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { SeedSiteDescriptorSchema, SeedSiteKind } from '../../src/leyline/index.js';
import { KarnCatalog } from '../../src/karn/index.js';
import { defaultJobSeed, forgeJobsFor, jobKey, resolveJob, siteKeyOf } from '../../src/tezzeret/forge-jobs.js';
import { convWidenSite } from '../support/conv-widen-site.js';

const dense = create(SeedSiteDescriptorSchema, { siteId: 'h1', kind: SeedSiteKind.DENSE, shape: [256] });
const conv = create(SeedSiteDescriptorSchema, { siteId: 'b1', kind: SeedSiteKind.CONV, shape: [16, 16, 32] });

describe('forge jobs', () => {
  it('keys sites by kind and shape, and jobs by blueprint and site key', () => {
    expect([siteKeyOf(dense), siteKeyOf(conv)]).toEqual(['dense:256', 'conv:16x16x32']);
    // A conv WIDEN site's key names its path: the same shapes with other kernels need other artifacts.
    expect([siteKeyOf(convWidenSite([14, 14, 4], [10])), siteKeyOf(convWidenSite([28, 28, 1], [14, 14, 8]))]).toEqual([
      'widen:14x14x4->10;conv3s1same-relu-pool2s2valid-dense',
      'widen:28x28x1->14x14x8;conv3s1same-relu-pool2s2valid-conv3s1same',
    ]);
    const job = resolveJob({ blueprintId: 'BP001', site: dense });
    expect(job.siteKey).toBe('dense:256');
    expect(jobKey(job)).toBe('BP001@dense:256');
    expect(defaultJobSeed(job)).toBe(defaultJobSeed(resolveJob({ blueprintId: 'BP001', site: dense })));
    expect(defaultJobSeed(job)).not.toBe(defaultJobSeed(resolveJob({ blueprintId: 'BP002', site: dense })));
  });

  it('lists every catalog blueprint at every site its family fits, in catalog order', () => {
    const catalog = new KarnCatalog();
    const jobs = forgeJobsFor(catalog, [dense, conv]);
    for (const job of jobs) expect(catalog.familyOf(job.blueprintId).fits(job.site)).toBe(true);
    const fitting = catalog
      .list()
      .flatMap((d) => [dense, conv].filter((s) => catalog.familyOf(d.blueprintId).fits(s)).map(() => d.blueprintId));
    expect(jobs.map((j) => j.blueprintId)).toEqual(fitting);
  });
});
