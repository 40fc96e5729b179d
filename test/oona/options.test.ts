import { describe, expect, it } from 'vitest';
import { ErrorCode, isEsperError, MAX_TIMER_MS, MemoryTelemetrySink, systemClock } from '../../src/core/index.js';
import { KeyRing } from '../../src/security/index.js';
import { MemoryStreamStore } from '../../src/oona/memory-stream-store.js';
import { resolveStreamBusOptions, STREAM_BUS_DEFAULTS, type StreamBusOptions } from '../../src/oona/options.js';
import { clusterHashKey, DEFAULT_STREAM_NAMES } from '../../src/oona/streams.js';

const base = (): StreamBusOptions => ({
  store: new MemoryStreamStore(),
  keyRing: new KeyRing([{ keyId: 'k', secret: Buffer.from('0123456789abcdef0123', 'utf8') }]),
  telemetry: new MemoryTelemetrySink(),
});

function fieldOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    expect(isEsperError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    return (error as { details: Record<string, unknown> }).details['field'];
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('resolveStreamBusOptions', () => {
  it('fills every default and prefixes the stream names', () => {
    const resolved = resolveStreamBusOptions({ ...base(), streamPrefix: 't1:' });
    for (const [field, value] of Object.entries(STREAM_BUS_DEFAULTS)) {
      if (field === 'streamPrefix') continue;
      expect(resolved[field as keyof typeof resolved], field).toBe(value);
    }
    expect(resolved.clock).toBe(systemClock);
    expect(resolved.streams.normal).toBe(`t1:${DEFAULT_STREAM_NAMES.normal}`);
    expect(resolved.streams.deadLetter).toBe(`t1:${DEFAULT_STREAM_NAMES.deadLetter}`);
  });

  it.each([
    ['maxAttempts', 0],
    ['readCount', 1.5],
    ['blockMs', -1],
    ['reclaimIdleMs', Number.NaN],
    ['reclaimIntervalMs', 0],
    ['emergencyMaxPerMin', 0],
    ['maxBacklog', 0],
    ['depthRefreshMs', -5],
    ['publishDeadlineMs', Number.POSITIVE_INFINITY],
    ['retentionMs', 0],
    ['kernelFreshnessWindowMs', 0],
    ['kernelNonceCacheSize', 0],
    ['breakerFailureThreshold', 0],
    ['breakerOpenMs', -1],
    ['stopTimeoutMs', MAX_TIMER_MS + 1],
    ['publishDeadlineMs', MAX_TIMER_MS + 1],
  ] as const)('rejects %s = %s naming the field', (field, value) => {
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), [field]: value }))).toBe(field);
  });

  it('rejects missing collaborators naming them', () => {
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), store: {} as never }))).toBe('store');
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), keyRing: undefined as never }))).toBe('keyRing');
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), telemetry: {} as never }))).toBe('telemetry');
  });

  it('rejects two logical streams sharing one physical name, and unknown stream keys', () => {
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), streamNames: { deadLetter: 'oona.normal' } }))).toMatch(/^streamNames\./);
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), streamNames: { bogus: 'x' } as Record<string, string> }))).toBe(
      'streamNames.bogus',
    );
  });

  it('keeps every stream name in one Redis Cluster hash slot, and refuses a name that leaves it', () => {
    const plain = resolveStreamBusOptions({ ...base(), streamPrefix: 't1:' });
    expect(new Set(Object.values(plain.streams).map(clusterHashKey))).toEqual(new Set(['oona']));
    const tagged = resolveStreamBusOptions({ ...base(), streamPrefix: '{fleet-a}:' });
    expect(new Set(Object.values(tagged.streams).map(clusterHashKey))).toEqual(new Set(['fleet-a']));
    expect(resolveStreamBusOptions({ ...base(), streamNames: { deadLetter: '{oona}.dlq' } }).streams.deadLetter).toBe('{oona}.dlq');
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), streamNames: { deadLetter: 'dlq' } }))).toBe('streamNames.deadLetter');
    // An empty `{}` tag makes Redis hash the whole key: every stream in its own slot.
    expect(fieldOf(() => resolveStreamBusOptions({ ...base(), streamPrefix: 'x{}' }))).toBe('streamPrefix');
  });
});

describe('clusterHashKey', () => {
  it.each([
    ['{oona}.normal', 'oona'],
    ['run7:{oona}.normal', 'oona'],
    ['{fleet}:{oona}.normal', 'fleet'],
    ['oona.normal', 'oona.normal'],
    ['x{}{oona}.normal', 'x{}{oona}.normal'],
    ['a{b', 'a{b'],
    ['a{b:{c}d', 'b:{c'],
  ])('hashes %s by %s, as Redis Cluster does', (key, hashKey) => {
    expect(clusterHashKey(key)).toBe(hashKey);
  });
});
