import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { ErrorCode, EsperError } from '../../src/core/errors.js';
import { redisReplyCode, toStoreError } from '../../src/oona/redis-errors.js';

function replyError(message: string): Error {
  return new (ReplyError as new (message: string) => Error)(message);
}

function socketError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
}

describe('toStoreError', () => {
  it.each([
    ['NOGROUP', replyError("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option"), ErrorCode.OONA_NO_GROUP],
    ['UNBLOCKED', replyError('UNBLOCKED the stream key no longer exists'), ErrorCode.OONA_NO_GROUP],
    ['LOADING', replyError('LOADING Redis is loading the dataset in memory'), ErrorCode.OONA_STORE_UNAVAILABLE],
    ['READONLY', replyError("READONLY You can't write against a read only replica."), ErrorCode.OONA_STORE_UNAVAILABLE],
    ['OOM', replyError("OOM command not allowed when used memory > 'maxmemory'."), ErrorCode.OONA_STORE_UNAVAILABLE],
    ['WRONGTYPE', replyError('WRONGTYPE Operation against a key holding the wrong kind of value'), ErrorCode.OONA_STORE_FAILED],
    ['ERR', replyError('ERR syntax error'), ErrorCode.OONA_STORE_FAILED],
    ['CLUSTERDOWN', replyError('CLUSTERDOWN The cluster is down'), ErrorCode.OONA_STORE_UNAVAILABLE],
    ['CROSSSLOT', replyError("CROSSSLOT Keys in request don't hash to the same slot"), ErrorCode.OONA_STORE_FAILED],
  ])('maps the %s reply to its code', (_name, error, code) => {
    const mapped = toStoreError(error, 'XREADGROUP');
    expect(mapped.code).toBe(code);
    expect(mapped.cause).toBe(error);
    expect(mapped.details).toMatchObject({ command: 'XREADGROUP', redisCode: _name });
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'])(
    'maps the socket error %s to OONA_STORE_UNAVAILABLE',
    (code) => {
      expect(toStoreError(socketError(code), 'XADD').code).toBe(ErrorCode.OONA_STORE_UNAVAILABLE);
    },
  );

  it('maps closed connections and exhausted reconnect attempts to OONA_STORE_UNAVAILABLE', () => {
    const maxRetries = Object.defineProperty(new Error('Reached the max retries per request limit'), 'name', {
      value: 'MaxRetriesPerRequestError',
    });
    expect(toStoreError(maxRetries, 'XADD').code).toBe(ErrorCode.OONA_STORE_UNAVAILABLE);
    expect(toStoreError(new Error('Connection is closed.'), 'XADD').code).toBe(ErrorCode.OONA_STORE_UNAVAILABLE);
  });

  it('maps a cluster with no reachable node to OONA_STORE_UNAVAILABLE', () => {
    const allFailed = Object.defineProperty(new Error('Failed to refresh slots cache.'), 'name', { value: 'ClusterAllFailedError' });
    expect(toStoreError(allFailed, 'XADD').code).toBe(ErrorCode.OONA_STORE_UNAVAILABLE);
    expect(toStoreError(new Error('None of startup nodes is available'), 'XADD').code).toBe(ErrorCode.OONA_STORE_UNAVAILABLE);
  });

  it('maps anything unrecognised to the terminal OONA_STORE_FAILED and passes EsperErrors through', () => {
    expect(toStoreError(new TypeError('boom'), 'XLEN').code).toBe(ErrorCode.OONA_STORE_FAILED);
    expect(toStoreError('a string', 'XLEN').code).toBe(ErrorCode.OONA_STORE_FAILED);
    const typed = new EsperError(ErrorCode.OONA_CLOSED, 'closed');
    expect(toStoreError(typed, 'XLEN')).toBe(typed);
  });
});

describe('redisReplyCode', () => {
  it('reads the first word of a reply error and nothing else', () => {
    expect(redisReplyCode(replyError('BUSYGROUP Consumer Group name already exists'))).toBe('BUSYGROUP');
    expect(redisReplyCode(new Error('NOGROUP but not a reply error'))).toBeUndefined();
    expect(redisReplyCode(undefined)).toBeUndefined();
  });
});
