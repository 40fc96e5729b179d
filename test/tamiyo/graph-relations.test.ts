import { beforeAll, describe, expect, it } from 'vitest';
import { GRAPH_RELATIONS } from '../../src/tamiyo/graph-relations.js';
import { initGraphFixtures } from './fixtures/graph-inputs.js';

beforeAll(initGraphFixtures);

describe('GRAPH_RELATIONS', () => {
  it('lists the 21 reference relations then 7 site relations, each triple and name unique', () => {
    expect(GRAPH_RELATIONS).toHaveLength(28);
    expect(GRAPH_RELATIONS.slice(0, 3).map((r) => `${r.src} ${r.name} ${r.dst}`)).toEqual([
      'global influences seed',
      'seed reports global',
      'global annotates blueprint',
    ]);
    expect(GRAPH_RELATIONS.slice(21).map((r) => `${r.src} ${r.name} ${r.dst}`)).toEqual([
      'global operates_site site',
      'site reports_site global',
      'seed occupies site',
      'site hosts seed',
      'blueprint fits site',
      'site accepts blueprint',
      'site next site',
    ]);
    expect(new Set(GRAPH_RELATIONS.map((r) => r.name)).size).toBe(28);
    expect(Object.isFrozen(GRAPH_RELATIONS)).toBe(true);
  });
});
