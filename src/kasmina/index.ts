/**
 * Kasmina: the seed executor — grafts kernels at host sites and walks each seed through
 * its gated lifecycle with alpha blending, isolation checks and command security. Other
 * subsystems import only from this file.
 */
export {
  KASMINA_SOURCE,
  KASMINA_STATE_VERSION,
  KasminaExecutor,
  type KasminaSeedState,
  type KasminaState,
  SHADOWING_MAX_LOSS_REGRESSION,
  type KasminaExecutorOptions,
  type KasminaLifecycleSettings,
  type KasminaStats,
} from './executor.js';
export { CommandInbox, type CommandInboxOptions, type CommandInboxStats } from './command-inbox.js';
export { buildOperatorCommand, OperatorAction, type OperatorCommandInput } from './operator-commands.js';
export {
  allowedNext,
  gateName,
  isTransitionAllowed,
  LIFECYCLE_TRANSITIONS,
  SeedLifecycle,
  stageName,
  type LifecycleTransition,
} from './lifecycle.js';
export {
  evaluateG0,
  evaluateG1,
  evaluateG2,
  evaluateG3,
  evaluateG4,
  evaluateG5,
  G3_ALPHA_TARGET,
  G4_MIN_CONTRIBUTION,
  gateForTransition,
  type GateResult,
} from './gates.js';
export {
  alphaSchedule,
  blendActivation,
  BLEND_DEFAULTS,
  effectiveAlphas,
  resolveBlendPlan,
  type BlendPhase,
  type BlendPlan,
} from './blending.js';
export { SeedSlot, type SeedSlotOptions, type SeedSlotPhase } from './seed-slot.js';
export { checkIsolation, findParameterOverlap, IsolationMonitor, type IsolationCheck } from './isolation.js';
export { ParameterRegistry, type ParameterRegistrySnapshot } from './registry.js';
export { KeyedLocks } from './locks.js';
export { KERNEL_CACHE_DEFAULTS, KernelCache, type KernelCacheStats } from './kernel-cache.js';
export { KernelFetcher, type FetchedSeedKernel, type KernelFetcherOptions, type KernelSource } from './kernel-fetcher.js';
export { MemoryGovernor, type MemoryGovernorOptions } from './memory.js';
export {
  PREFETCH_COORDINATOR_DEFAULTS,
  PrefetchCoordinator,
  PrefetchStatus,
  type PrefetchCoordinatorOptions,
  type PrefetchStats,
  type PrefetchTicket,
} from './prefetch.js';
export { KasminaEvent, KasminaMetric } from './names.js';
export { SeedEvent, SeedMetric } from './seed-events.js';
