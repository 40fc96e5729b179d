/**
 * Simic: learns Tamiyo's policy from field reports. This file lists its public exports;
 * other subsystems import only from here.
 */
export {
  REPLAY_BUFFER_DEFAULTS,
  REPLAY_LOG_FILE,
  ReplayBuffer,
  replayBufferFromSettings,
  resolveReplayBufferOptions,
  type ReplayAddOptions,
  type ReplayAddResult,
  type ReplayBufferOptions,
  type ReplayBufferRecovery,
  type ReplayBufferStats,
  type ReplayEntry,
  type ResolvedReplayBufferOptions,
} from './replay-buffer.js';
export {
  SIMIC_CONSUMER_GROUP,
  SimicIngestor,
  type SimicIngestorOptions,
  type SimicIngestorState,
  type SimicIngestorStats,
  type WalIngestResult,
} from './ingestor.js';
