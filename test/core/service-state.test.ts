import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/core/errors.js';
import { ServiceState } from '../../src/core/service-state.js';
import { thrownBy as thrown } from '../support/thrown.js';

type State = 'created' | 'running' | 'closing' | 'closed';

describe('ServiceState', () => {
  it('starts in its initial state and moves through legal transitions', () => {
    const state = new ServiceState<State>('prefetch worker', 'created');
    expect(state.current).toBe('created');
    state.transition('created', 'running', 'start');
    expect(state.is('running', 'closing')).toBe(true);
    state.require(['running', 'closing'], 'request');
    state.set('closed');
    expect(state.current).toBe('closed');
  });

  it('refuses an illegal call with INVALID_STATE naming owner, state and action, and keeps its state', () => {
    const state = new ServiceState<State>('prefetch worker', 'running');
    const error = thrown(() => state.transition('created', 'running', 'start'));
    expect(error.code).toBe(ErrorCode.INVALID_STATE);
    expect(error.message).toBe('prefetch worker is running; cannot start');
    expect(error.details).toEqual({ owner: 'prefetch worker', state: 'running', action: 'start' });
    expect(state.current).toBe('running');
  });

  it('throws the code and details the owner asks for', () => {
    const state = new ServiceState<State>('record log /x.wal', 'closed');
    const error = thrown(() => state.require(['running'], 'append', { code: ErrorCode.RECORD_LOG_CLOSED, details: { path: '/x.wal' } }));
    expect(error.code).toBe(ErrorCode.RECORD_LOG_CLOSED);
    expect(error.details).toEqual({ path: '/x.wal', owner: 'record log /x.wal', state: 'closed', action: 'append' });
  });
});
