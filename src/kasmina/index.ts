/**
 * Kasmina: the seed executor — grafts kernels at host sites and walks each seed through
 * its gated lifecycle. Other subsystems import only from this file.
 */
export { createKasmina, type Kasmina, type KasminaDeps, type KasminaSettings } from './create-kasmina.js';
export { KasminaExecutor, type KasminaExecutorOptions, type KasminaExecutorState, type KasminaStats } from './executor.js';
export type { SeedReport } from './executor-state.js';
export type { LifecycleTransition } from './lifecycle.js';
export { KASMINA_STATE_VERSION, type KasminaState } from './kasmina-state.js';
export type { KasminaLifecycleSettings } from './seed-driver.js';
export type { FetchedSeedKernel, KernelFetcher, KernelSource } from './kernel-fetcher.js';
export { CommandInbox, type CommandInboxOptions, type CommandInboxState, type CommandInboxStats } from './command-inbox.js';
export { buildOperatorCommand, OperatorAction, type OperatorCommandInput } from './operator-commands.js';
export { KasminaEvent, KasminaMetric } from './names.js';
export { SeedEvent, SeedMetric } from './seed-events.js';
