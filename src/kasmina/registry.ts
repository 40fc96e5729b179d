/**
 * Who owns which trainable variable: the host, the teacher, or one seed (reference
 * prototype-kasmina §8.2). Departures from the prototype: ownership by identity and by name
 * (tfjs names are global), atomic registration (a conflict records nothing), and host and
 * teacher variables owned like a seed's, so a seed can never claim one.
 */
import { ErrorCode, EsperError, optionChecks } from '../core/index.js';
import type { tf } from '../tensor/index.js';

/** The owner of a variable. */
export type ParameterOwner = { readonly kind: 'host' } | { readonly kind: 'teacher' } | { readonly kind: 'seed'; readonly seedId: string };

/** A point-in-time copy of the registry. Seeds sorted by id, names sorted. */
export interface ParameterRegistrySnapshot {
  readonly hostVariables: readonly string[];
  readonly teacherVariables: readonly string[];
  readonly seeds: readonly { readonly seedId: string; readonly variables: readonly string[] }[];
}

const HOST: ParameterOwner = Object.freeze({ kind: 'host' });
const TEACHER: ParameterOwner = Object.freeze({ kind: 'teacher' });

/** `host`, `teacher` or the seed id: the `owner` detail of a conflict. */
export function ownerLabel(owner: ParameterOwner): string {
  return owner.kind === 'seed' ? owner.seedId : owner.kind;
}

function sameOwner(a: ParameterOwner, b: ParameterOwner): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind !== 'seed' || a.seedId === (b as { seedId: string }).seedId;
}

/** Variable ownership for one host model, its optional teacher and its seeds. */
export class ParameterRegistry {
  readonly #byVariable = new Map<tf.Variable, ParameterOwner>();
  readonly #byName = new Map<string, ParameterOwner>();
  /** Variables per owner key (`host`, `teacher`, `seed:<id>`), for removal and snapshots. */
  readonly #byOwner = new Map<string, Set<tf.Variable>>();

  /**
   * Marks `variables` as the host's. Additive; idempotent for variables the host owns.
   * @throws EsperError `KASMINA_REGISTRY_CONFLICT` (nothing recorded) when one is owned by
   *   the teacher or a seed.
   */
  registerHost(variables: readonly tf.Variable[]): void {
    this.#register(HOST, variables);
  }

  /**
   * Marks `variables` as the teacher's. Additive; idempotent for variables the teacher owns.
   * @throws EsperError `KASMINA_REGISTRY_CONFLICT` (nothing recorded) when one is owned by
   *   the host or a seed.
   */
  registerTeacher(variables: readonly tf.Variable[]): void {
    this.#register(TEACHER, variables);
  }

  /**
   * Marks `variables` as seed `seedId`'s. Additive; re-registering the same variables is a
   * no-op. A variable whose *name* the seed already owns replaces that stale entry (tfjs
   * only reuses a name once the old variable is disposed).
   * @throws EsperError `INVALID_ARGUMENT` for an empty seed id; `KASMINA_REGISTRY_CONFLICT`
   *   (nothing recorded; details `seed`, `variable`, `owner`) when one is owned by the host,
   *   the teacher or another seed.
   */
  registerSeed(seedId: string, variables: readonly tf.Variable[]): void {
    optionChecks('ParameterRegistry.registerSeed').nonEmptyString('seedId', seedId);
    this.#register({ kind: 'seed', seedId }, variables);
  }

  /** Forgets every variable of `seedId`. Returns how many it owned. */
  deregisterSeed(seedId: string): number {
    return this.#dropOwner({ kind: 'seed', seedId });
  }

  /** The owner of `variable` (by identity, then by name), or `undefined`. */
  ownerOf(variable: tf.Variable): ParameterOwner | undefined {
    return this.#byVariable.get(variable) ?? this.#byName.get(variable.name);
  }

  /**
   * True when every variable is owned by `seedId` (an empty list is true); false when any
   * is unowned or owned by the host, the teacher or another seed.
   */
  validateUpdate(seedId: string, variables: readonly tf.Variable[]): boolean {
    return variables.every((variable) => {
      const owner = this.ownerOf(variable);
      return owner?.kind === 'seed' && owner.seedId === seedId;
    });
  }

  /** Ids of seeds that own at least one variable, sorted. */
  seedIds(): string[] {
    const ids: string[] = [];
    for (const [key, variables] of this.#byOwner) {
      if (key.startsWith('seed:') && variables.size > 0) ids.push(key.slice('seed:'.length));
    }
    return ids.sort();
  }

  /** Variables tracked, all owners together. */
  get entries(): number {
    return this.#byVariable.size;
  }

  /** Forgets every seed's variables (host and teacher stay). Returns how many were dropped. */
  resetSeeds(): number {
    let dropped = 0;
    for (const seedId of this.seedIds()) dropped += this.deregisterSeed(seedId);
    return dropped;
  }

  /** Forgets the teacher's variables. Returns how many were dropped. */
  resetTeacher(): number {
    return this.#dropOwner(TEACHER);
  }

  /** A copy of the current ownership. */
  snapshot(): ParameterRegistrySnapshot {
    const names = (key: string): string[] => [...(this.#byOwner.get(key) ?? [])].map((v) => v.name).sort();
    return {
      hostVariables: names(ownerKey(HOST)),
      teacherVariables: names(ownerKey(TEACHER)),
      seeds: this.seedIds().map((seedId) => ({ seedId, variables: names(ownerKey({ kind: 'seed', seedId })) })),
    };
  }

  #register(owner: ParameterOwner, variables: readonly tf.Variable[]): void {
    // Check everything first, then write: a conflict leaves the registry untouched.
    const staleSameName: tf.Variable[] = [];
    for (const variable of variables) {
      const current = this.#byVariable.get(variable) ?? this.#byName.get(variable.name);
      if (current === undefined) continue;
      if (!sameOwner(current, owner)) throw conflict(owner, variable, current);
      if (!this.#byVariable.has(variable)) staleSameName.push(variable);
    }
    const key = ownerKey(owner);
    let owned = this.#byOwner.get(key);
    if (owned === undefined) {
      owned = new Set();
      this.#byOwner.set(key, owned);
    }
    for (const variable of staleSameName) {
      for (const old of owned) {
        if (old.name === variable.name) {
          owned.delete(old);
          this.#byVariable.delete(old);
        }
      }
    }
    for (const variable of variables) {
      owned.add(variable);
      this.#byVariable.set(variable, owner);
      this.#byName.set(variable.name, owner);
    }
  }

  #dropOwner(owner: ParameterOwner): number {
    const key = ownerKey(owner);
    const owned = this.#byOwner.get(key);
    if (owned === undefined) return 0;
    for (const variable of owned) {
      this.#byVariable.delete(variable);
      this.#byName.delete(variable.name);
    }
    this.#byOwner.delete(key);
    return owned.size;
  }
}

function ownerKey(owner: ParameterOwner): string {
  return owner.kind === 'seed' ? `seed:${owner.seedId}` : owner.kind;
}

function conflict(registrant: ParameterOwner, variable: tf.Variable, owner: ParameterOwner): EsperError {
  const who = registrant.kind === 'seed' ? `seed ${registrant.seedId}` : registrant.kind;
  return new EsperError(
    ErrorCode.KASMINA_REGISTRY_CONFLICT,
    `variable ${variable.name} cannot be registered to ${who}: already registered to ${ownerLabel(owner)}`,
    {
      details: {
        seed: registrant.kind === 'seed' ? registrant.seedId : '',
        registrant: ownerLabel(registrant),
        variable: variable.name,
        owner: ownerLabel(owner),
        ownerKind: owner.kind,
      },
    },
  );
}
