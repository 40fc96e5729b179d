import { beforeAll, describe, expect, it } from 'vitest';
import {
  ACTIVATION_FEATURES,
  BLUEPRINT_FEATURES,
  GLOBAL_FEATURES,
  LAYER_FEATURES,
  PARAMETER_FEATURES,
  SEED_FEATURES,
  SITE_FEATURES,
} from '../../src/tamiyo/graph-features.js';
import { NODE_FEATURE_DIMS, NODE_TYPES, type NodeType } from '../../src/tamiyo/graph-types.js';
import { initGraphFixtures } from './fixtures/graph-inputs.js';

beforeAll(initGraphFixtures);

describe('feature layouts', () => {
  it('name exactly as many features as graph-types declares per node type', () => {
    const layouts: Record<NodeType, readonly string[]> = {
      global: GLOBAL_FEATURES,
      seed: SEED_FEATURES,
      site: SITE_FEATURES,
      blueprint: BLUEPRINT_FEATURES,
      layer: LAYER_FEATURES,
      activation: ACTIVATION_FEATURES,
      parameter: PARAMETER_FEATURES,
    };
    for (const type of NODE_TYPES) {
      expect(layouts[type]).toHaveLength(NODE_FEATURE_DIMS[type]);
      expect(new Set(layouts[type]).size).toBe(NODE_FEATURE_DIMS[type]);
    }
  });
});
