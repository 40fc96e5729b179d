import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../src/core/index.js';
import { DEFAULT_GNN_CONFIG, gnnConfigFor, validateGnnConfig, type GnnConfig } from '../../src/tamiyo/gnn-config.js';
import type { RelationSpec } from '../../src/tamiyo/graph-types.js';
import { TEST_RELATIONS } from './fixtures/graphs.js';
import { errorOf } from './fixtures/errors.js';

const SMALL = gnnConfigFor(TEST_RELATIONS, { hidden: 8, gatHidden: 6, heads: 2 });

describe('GNN config', () => {
  it('rejects configs that name the bad field', () => {
    const bad = (config: GnnConfig, field: string): void => {
      const error = errorOf(() => validateGnnConfig(config));
      expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
      expect((error as { details: Record<string, unknown> }).details.field).toBe(field);
    };
    bad({ ...SMALL, hidden: 0 }, 'hidden');
    bad({ ...SMALL, heads: 1.5 }, 'heads');
    bad({ ...SMALL, actionClasses: 4 }, 'actionClasses');
    bad({ ...SMALL, blendClasses: 5 }, 'blendClasses');
    bad({ ...SMALL, nodeDims: { ...SMALL.nodeDims, seed: 0 } }, 'nodeDims.seed');
    bad({ ...SMALL, relations: [...TEST_RELATIONS, TEST_RELATIONS[0] as RelationSpec] }, 'relations');
    bad({ ...SMALL, relations: TEST_RELATIONS.filter((r) => r.dst !== 'site') }, 'relations');
    bad({ ...SMALL, relations: [...TEST_RELATIONS, { src: 'seed', name: 'a/b', dst: 'seed' }] }, 'relations');
  });

  it('defaults to the sizes chosen by measurement and the 32/4/5/4/2 heads', () => {
    expect(DEFAULT_GNN_CONFIG).toMatchObject({ hidden: 64, gatHidden: 32, heads: 4, actionClasses: 32, blendClasses: 4, riskClasses: 5 });
  });
});
