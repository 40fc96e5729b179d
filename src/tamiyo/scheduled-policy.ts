/**
 * A Tamiyo policy that executes a fixed growth schedule (the study's growth plans, e.g.
 * GradMax's student–teacher protocol: one unit every 200 steps): at the first step call at
 * or after an entry's step it germinates the entry's blueprint at the next free growth slot
 * of the entry's layer — a WIDEN site of that block no seed holds. The commands go the
 * usual way (risk engine, signed command, Kasmina's gates and lifecycle).
 *
 * It decides on per-step calls (each packet carries the global step, so the schedule is
 * exact whatever the epoch length) and waits on epoch calls. An entry is done once its seed
 * shows up in a packet; a germination that never shows up — held by the risk engine (which
 * holds growth while the loss is volatile or spiking), or refused by Kasmina's G0 — is
 * proposed again at the next step, with a fresh seed id, up to `maxAttempts` times, then
 * given up (the snapshot says so; the run's seed reports show the growth missing). Entries
 * are executed in step order, one per call. Seed ids are `<siteId>#<n>`, `n` counting this
 * policy's germinations.
 */
import { optionChecks } from '../core/index.js';
import { familyById } from '../karn/index.js';
import { SeedSiteKind, type SeedSiteDescriptor, type SystemStatePacket } from '../leyline/index.js';
import type { BlueprintCandidate } from './candidates.js';
import { DecisionKind, toId } from './decision.js';
import { BUSY_STAGES } from './stages.js';
import { PolicyAction } from './gnn-config.js';
import type { PolicyContext, PolicyProposal, TamiyoPolicy } from './policy.js';

/** One growth of a schedule. */
export interface GrowthScheduleEntry {
  /** Global step (optimizer steps taken) from which the growth is due. */
  readonly atStep: number;
  /** The layer (host block) that grows: its WIDEN sites are its growth slots. */
  readonly layer: string;
  /** The blueprint germinated. */
  readonly blueprintId: string;
}

/** Options of {@link ScheduledGrowthPolicy}. */
export interface ScheduledGrowthPolicyOptions {
  /** The growths, in any order (executed by step; ties in the given order). */
  readonly schedule: readonly GrowthScheduleEntry[];
  /**
   * Germinations proposed for one entry, at consecutive steps, before it is given up (a hold
   * while the loss settles delays a growth by that many steps at most).
   * @default 50
   */
  readonly maxAttempts?: number;
  /**
   * Version stamped on every proposal.
   * @default 'tamiyo-scheduled-1'
   */
  readonly version?: string;
}

/** What became of one schedule entry (the policy's snapshot). */
export interface ScheduledGrowthRecord extends GrowthScheduleEntry {
  /** `pending` (not yet due or not yet confirmed), `grown` (its seed showed up), `given_up`. */
  readonly status: 'pending' | 'grown' | 'given_up';
  readonly attempts: number;
  /** The seed that carries it, once grown. */
  readonly seedId?: string;
  readonly siteId?: string;
  /** Global step at which its seed was proposed (the last attempt). */
  readonly proposedAtStep?: number;
}

type EntryTrack = { -readonly [K in keyof ScheduledGrowthRecord]: ScheduledGrowthRecord[K] };

const check = optionChecks('ScheduledGrowthPolicyOptions');

/** Executes a growth schedule; see the module comment. Calls must come in order, one at a time. */
export class ScheduledGrowthPolicy implements TamiyoPolicy {
  readonly name = 'scheduled';
  readonly version: string;
  readonly #maxAttempts: number;
  readonly #entries: EntryTrack[];
  /** The entry whose seed was proposed and is not yet confirmed, with that seed's id and site. */
  #awaiting: { readonly entry: EntryTrack; readonly seedId: string; readonly siteId: string } | undefined;
  #germinations = 0;

  /** @throws EsperError INVALID_ARGUMENT naming a bad option */
  constructor(options: ScheduledGrowthPolicyOptions) {
    if (!Array.isArray(options.schedule)) check.fail('schedule', 'an array of growths', options.schedule);
    this.#entries = options.schedule
      .map((entry, i): EntryTrack => {
        check.integer(`schedule[${i}].atStep`, entry.atStep, { min: 0 });
        toId(entry.layer, `schedule[${i}].layer`);
        toId(entry.blueprintId, `schedule[${i}].blueprintId`);
        return { atStep: entry.atStep, layer: entry.layer, blueprintId: entry.blueprintId, status: 'pending', attempts: 0 };
      })
      .map((entry, order) => ({ entry, order }))
      .sort((a, b) => a.entry.atStep - b.entry.atStep || a.order - b.order)
      .map(({ entry }) => entry);
    this.#maxAttempts = check.integer('maxAttempts', options.maxAttempts ?? 50, { min: 1 });
    this.version = options.version ?? 'tamiyo-scheduled-1';
    if (this.version.trim().length === 0) check.fail('version', 'a non-blank version', this.version);
  }

  /** Germinates the next due growth at a free slot of its layer; waits otherwise. */
  propose(context: PolicyContext): PolicyProposal {
    if (context.epochBoundary) return this.#wait('epoch call (the schedule runs on step calls)');
    const { packet } = context;
    const step = Number(packet.globalStep);
    this.#confirm(packet);
    const entry = this.#entries.find((e) => e.status === 'pending');
    if (entry === undefined) return this.#wait('schedule complete');
    if (step < entry.atStep) return this.#wait(`next growth at step ${entry.atStep}`);
    if (entry.attempts >= this.#maxAttempts) {
      entry.status = 'given_up';
      return this.#wait(`growth at step ${entry.atStep} given up after ${entry.attempts} attempts`);
    }
    const candidate = offered(context.candidates, entry.blueprintId);
    if (candidate === undefined) return this.#wait(`blueprint ${entry.blueprintId} is not offered`);
    const site = freeSlots(context, entry.layer).find((s) => familyById(candidate.descriptor.family)?.fits(s) === true);
    if (site === undefined) return this.#wait(`no free growth slot of ${entry.layer} fits ${entry.blueprintId}`);
    return this.#germinate(entry, site, packet, step);
  }

  /** What became of each entry, in step order. */
  snapshot(): { readonly version: string; readonly entries: readonly ScheduledGrowthRecord[] } {
    return { version: this.version, entries: this.#entries.map((e) => ({ ...e })) };
  }

  /** Marks the awaited entry grown once its seed is in the packet, or frees it for another attempt. */
  #confirm(packet: SystemStatePacket): void {
    const awaiting = this.#awaiting;
    if (awaiting === undefined) return;
    this.#awaiting = undefined;
    if (packet.seedStates.some((s) => s.seedId === awaiting.seedId)) {
      awaiting.entry.status = 'grown';
      awaiting.entry.seedId = awaiting.seedId;
      awaiting.entry.siteId = awaiting.siteId;
    }
  }

  #germinate(entry: EntryTrack, site: SeedSiteDescriptor, packet: SystemStatePacket, step: number): PolicyProposal {
    const taken = new Set(packet.seedStates.map((s) => s.seedId));
    let n = this.#germinations + 1;
    while (taken.has(`${site.siteId}#${n}`)) n += 1;
    this.#germinations = n;
    const seedId = `${site.siteId}#${n}`;
    entry.attempts += 1;
    entry.proposedAtStep = step;
    this.#awaiting = { entry, seedId, siteId: site.siteId };
    return {
      decision: {
        kind: DecisionKind.GERMINATE,
        seedId: toId(seedId, 'seed id'),
        siteId: toId(site.siteId, 'site id'),
        blueprintId: toId(entry.blueprintId, 'blueprint id'),
      },
      policyVersion: this.version,
      actionId: PolicyAction.GERMINATE,
      notes: `scheduled growth of ${entry.layer} (step ${entry.atStep}): ${entry.blueprintId} at ${site.siteId}, attempt ${entry.attempts}`,
    };
  }

  #wait(notes: string): PolicyProposal {
    return { decision: { kind: DecisionKind.WAIT }, policyVersion: this.version, actionId: PolicyAction.WAIT, notes };
  }
}

/** The offered, non-quarantined candidate `blueprintId`. */
function offered(candidates: readonly BlueprintCandidate[], blueprintId: string): BlueprintCandidate | undefined {
  return candidates.find((c) => c.descriptor.blueprintId === blueprintId && c.quarantined !== true && !c.descriptor.quarantineOnly);
}

/** The WIDEN sites of `layer` no seed holds, in host order. */
function freeSlots(context: PolicyContext, layer: string): SeedSiteDescriptor[] {
  const held = new Set(context.packet.seedStates.filter((s) => BUSY_STAGES.has(s.stage)).map((s) => s.siteId));
  return context.host.sites.filter((s) => s.kind === SeedSiteKind.WIDEN && s.block === layer && !held.has(s.siteId));
}
