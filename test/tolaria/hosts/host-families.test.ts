/**
 * The host-family registry: hosts chosen by name, as the CLI does.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError } from '../../../src/core/index.js';
import { initTensorBackend } from '../../../src/tensor/index.js';
import type { BlockHost } from '../../../src/tolaria/hosts/block-host.js';
import { createHost, HOST_FAMILIES, isHostFamilyName } from '../../../src/tolaria/hosts/host-families.js';

beforeAll(async () => {
  await initTensorBackend();
});

const live: BlockHost[] = [];
afterEach(() => {
  for (const host of live.splice(0)) host.dispose();
});

describe('HOST_FAMILIES / createHost', () => {
  it('registers mlp and cnn under the family name their descriptors carry', () => {
    expect(Object.keys(HOST_FAMILIES)).toEqual(['mlp', 'cnn']);
    for (const [name, family] of Object.entries(HOST_FAMILIES)) {
      expect(family.name).toBe(name);
      expect(family.description.length).toBeGreaterThan(0);
    }
  });

  it('builds a host of the family named by a string, sized by the dataset', () => {
    const family: string = 'cnn';
    const host = createHost(family, { inputShape: [8, 8, 1], numClasses: 3, seed: 1 });
    live.push(host);
    expect(host.descriptor.family).toBe('cnn');
    expect(host.descriptor.numClasses).toBe(3);
    const mlp = createHost('mlp', { inputShape: [5], numClasses: 2, seed: 1, hidden: [7], hostId: 'named-mlp' });
    live.push(mlp);
    expect(mlp.descriptor.hostId).toBe('named-mlp');
    expect(mlp.descriptor.sites.map((s) => [...s.shape])).toEqual([[7], [5]]);
  });

  it('rejects an unknown family with INVALID_ARGUMENT naming the known ones', () => {
    expect(isHostFamilyName('resnet')).toBe(false);
    expect(isHostFamilyName('mlp')).toBe(true);
    let error: unknown;
    try {
      createHost('resnet', { inputShape: [4], numClasses: 2, seed: 0 });
    } catch (e) {
      error = e;
    }
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    expect((error as Error).message).toContain('mlp, cnn');
  });
});
