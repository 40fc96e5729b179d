/**
 * The Karn blueprint catalog: descriptors, parameter validation, selection by tier and site
 * under a circuit breaker, and seed-module construction (reference
 * prototype-blueprint-pipeline §1.2; departures in docs/architecture.md, Karn).
 */
import { clone } from '@bufbuild/protobuf';
import { createHash } from 'node:crypto';
import {
  buildTelemetryPacket,
  CIRCUIT_BREAKER_DEFAULTS,
  CircuitBreaker,
  ErrorCode,
  errorLabel,
  EsperError,
  isEsperError,
  systemClock,
  type CircuitBreakerSnapshot,
  type Clock,
  type EventInput,
  type TelemetrySink,
} from '../core/index.js';
import {
  BlueprintDescriptorSchema,
  BlueprintTier,
  CircuitBreakerState,
  TelemetryLevel,
  type BlueprintDescriptor,
  type SeedSiteDescriptor,
} from '../leyline/index.js';
import { seededRng, type Rng } from '../tensor/index.js';
import { DEFAULT_BLUEPRINTS, type BlueprintEntry, type BlueprintParameters } from './catalog-data.js';
import { resolveKnobs, type FamilyConfig, type FamilyId, type SeedModule } from './family.js';
import { familyById } from './families/register-all.js';
import { KARN_TELEMETRY_SOURCE, KarnEvent, KarnMetric } from './names.js';

/** Options of {@link KarnCatalog}. */
export interface KarnCatalogOptions {
  /**
   * Blueprints to hold, in insertion order.
   * @default DEFAULT_BLUEPRINTS (BP001–BP056)
   */
  readonly blueprints?: readonly BlueprintEntry[];
  /** Where selection telemetry goes (one packet per `select` call). @default none */
  readonly telemetry?: TelemetrySink;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Consecutive selection failures that open the breaker. @default 3 */
  readonly breakerFailureThreshold?: number;
  /** Half-open successes that close it. @default 1 */
  readonly breakerSuccessThreshold?: number;
  /** How long the breaker stays open, in milliseconds. @default 30000 */
  readonly breakerOpenTimeoutMs?: number;
}

/** Filters of {@link KarnCatalog.list}. */
export interface ListOptions {
  readonly tier?: BlueprintTier;
  /** Keep only blueprints whose family fits this site. */
  readonly site?: SeedSiteDescriptor;
}

/** A selection request. */
export interface SelectOptions {
  /** Restrict to one tier. @default any tier */
  readonly tier?: BlueprintTier;
  /** The site the seed will grow at; only fitting blueprints are candidates. */
  readonly site: SeedSiteDescriptor;
  /** Picks uniformly among candidates (sorted by id). Takes precedence over `context`. */
  readonly rng?: Rng;
  /**
   * Deterministic pick: index = first 4 bytes of sha256(context), big-endian, mod N
   * (reference §1.2). Without `rng` and `context` the first candidate by id is chosen.
   */
  readonly context?: string;
  /** Admit `quarantine_only` blueprints. @default false */
  readonly allowQuarantine?: boolean;
  /** Parameters to use; missing ones take the bound midpoints, then all are validated. */
  readonly parameters?: BlueprintParameters;
}

/** The outcome of {@link KarnCatalog.select}. */
export interface KarnSelection {
  /** A copy of the chosen descriptor. */
  readonly descriptor: BlueprintDescriptor;
  /** Complete, validated parameters. */
  readonly parameters: BlueprintParameters;
  readonly family: FamilyId;
  readonly latencyMs: number;
}

/** Options of {@link KarnCatalog.build}. */
export interface BuildOptions {
  /** Seed of the weight initialisation (same seed → same weights). */
  readonly seed: number;
  /** @default the bound midpoints */
  readonly parameters?: BlueprintParameters;
  /**
   * Variable name prefix; two live modules of one blueprint need distinct scopes.
   * @default the blueprint id
   */
  readonly scope?: string;
}

const TIER_METRIC: Readonly<Partial<Record<BlueprintTier, KarnMetric>>> = {
  [BlueprintTier.SAFE]: KarnMetric.SELECTION_SAFE,
  [BlueprintTier.EXPERIMENTAL]: KarnMetric.SELECTION_EXPERIMENTAL,
  [BlueprintTier.HIGH_RISK]: KarnMetric.SELECTION_ADVERSARIAL,
};

const METRIC_UNITS: Readonly<Record<KarnMetric, string>> = {
  [KarnMetric.REQUESTS_TOTAL]: 'count',
  [KarnMetric.REQUESTS_FAILED]: 'count',
  [KarnMetric.BREAKER_DENIED]: 'count',
  [KarnMetric.BREAKER_OPEN_TOTAL]: 'count',
  [KarnMetric.BREAKER_STATE]: 'state',
  [KarnMetric.SELECTION_SAFE]: 'count',
  [KarnMetric.SELECTION_EXPERIMENTAL]: 'count',
  [KarnMetric.SELECTION_ADVERSARIAL]: 'count',
  [KarnMetric.SELECTION_LATENCY_MS]: 'ms',
};

/** Midpoint of every declared parameter's bounds (what the forge compiles with). */
export function midpointParameters(descriptor: BlueprintDescriptor): BlueprintParameters {
  const out: Record<string, number> = {};
  for (const p of descriptor.allowedParameters) out[p.name] = (p.minValue + p.maxValue) / 2;
  return out;
}

/** Index chosen for `context` among `n` candidates (reference §1.2). */
export function contextIndex(context: string, n: number): number {
  return createHash('sha256').update(context, 'utf8').digest().readUInt32BE(0) % n;
}

/** The blueprint catalog. See the module comment for deviations from the prototype. */
export class KarnCatalog {
  readonly #entries = new Map<string, BlueprintEntry>();
  readonly #breaker: CircuitBreaker;
  readonly #telemetry: TelemetrySink | undefined;
  readonly #clock: Clock;
  readonly #metrics = new Map<KarnMetric, number>();
  #pendingEvents: EventInput[] = [];

  constructor(options: KarnCatalogOptions = {}) {
    this.#clock = options.clock ?? systemClock;
    this.#telemetry = options.telemetry;
    for (const entry of options.blueprints ?? DEFAULT_BLUEPRINTS) {
      if (familyById(entry.descriptor.family) === undefined) {
        throw new EsperError(
          ErrorCode.INVALID_ARGUMENT,
          `blueprint ${entry.descriptor.blueprintId} names unknown family '${entry.descriptor.family}'`,
          {
            details: { blueprintId: entry.descriptor.blueprintId, field: 'family' },
          },
        );
      }
      this.#entries.set(entry.descriptor.blueprintId, entry);
    }
    for (const name of Object.values(KarnMetric)) this.#metrics.set(name, 0);
    this.#metrics.set(KarnMetric.BREAKER_STATE, CircuitBreakerState.CIRCUIT_STATE_CLOSED);
    this.#breaker = new CircuitBreaker({
      name: 'karn.catalog',
      failureThreshold: options.breakerFailureThreshold ?? CIRCUIT_BREAKER_DEFAULTS.failureThreshold,
      successThreshold: options.breakerSuccessThreshold ?? CIRCUIT_BREAKER_DEFAULTS.successThreshold,
      openTimeoutMs: options.breakerOpenTimeoutMs ?? CIRCUIT_BREAKER_DEFAULTS.openTimeoutMs,
      clock: this.#clock,
      onStateChange: (change) => {
        this.#metrics.set(KarnMetric.BREAKER_STATE, change.to);
        if (change.to === CircuitBreakerState.CIRCUIT_STATE_OPEN) {
          this.#bump(KarnMetric.BREAKER_OPEN_TOTAL);
          this.#pendingEvents.push({
            description: KarnEvent.BREAKER_OPENED,
            level: TelemetryLevel.WARNING,
            attributes: { failures: change.snapshot.failureCount, reason: change.reason },
          });
        }
      },
    });
  }

  /** Number of blueprints held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether `id` is in the catalog. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** A copy of the descriptor `id`; throws `KARN_BLUEPRINT_NOT_FOUND`. */
  get(id: string): BlueprintDescriptor {
    return clone(BlueprintDescriptorSchema, this.#entry(id).descriptor);
  }

  /** Copies of the descriptors matching the filters, in insertion (id) order. */
  list(options: ListOptions = {}): BlueprintDescriptor[] {
    return [...this.#entries.values()]
      .filter((e) => options.tier === undefined || e.descriptor.tier === options.tier)
      .filter((e) => options.site === undefined || this.#family(e).fits(options.site))
      .map((e) => clone(BlueprintDescriptorSchema, e.descriptor));
  }

  /** The family config of blueprint `id`. */
  familyOf(id: string): FamilyConfig {
    return this.#family(this.#entry(id));
  }

  /** Bound midpoints of blueprint `id` (its default parameters). */
  defaultParameters(id: string): BlueprintParameters {
    return midpointParameters(this.#entry(id).descriptor);
  }

  /**
   * Checks that `params` gives every declared parameter of `id`, no undeclared one, and
   * each value finite and within its inclusive bounds. Returns a copy. Throws
   * `KARN_BLUEPRINT_NOT_FOUND` or `KARN_PARAMETER_INVALID` with `details.parameter`.
   */
  validateParameters(id: string, params: BlueprintParameters): BlueprintParameters {
    const { descriptor } = this.#entry(id);
    const declared = new Map(descriptor.allowedParameters.map((p) => [p.name, p]));
    for (const name of Object.keys(params)) {
      if (!declared.has(name)) throw parameterError(id, name, 'unknown', `blueprint ${id} has no parameter '${name}'`);
    }
    const out: Record<string, number> = {};
    for (const [name, bounds] of declared) {
      const value = params[name];
      if (value === undefined) throw parameterError(id, name, 'missing', `blueprint ${id}: missing required parameter '${name}'`);
      if (!Number.isFinite(value) || value < bounds.minValue || value > bounds.maxValue) {
        throw parameterError(
          id,
          name,
          'out_of_bounds',
          `blueprint ${id}: parameter '${name}'=${value} outside bounds [${bounds.minValue}, ${bounds.maxValue}]`,
        );
      }
      out[name] = value;
    }
    return out;
  }

  /**
   * Chooses a blueprint under the breaker. Throws `BREAKER_OPEN` when the breaker refuses,
   * `KARN_NO_CANDIDATES` when nothing fits, `KARN_PARAMETER_INVALID` for bad parameters;
   * every failure counts against the breaker (reference §1.2). Emits one telemetry packet.
   */
  select(options: SelectOptions): KarnSelection {
    if (!this.#breaker.allow()) {
      this.#bump(KarnMetric.BREAKER_DENIED);
      this.#pendingEvents.push({
        description: KarnEvent.BREAKER_DENIED,
        level: TelemetryLevel.WARNING,
        attributes: { reason: 'breaker_open' },
      });
      this.#flush();
      throw new EsperError(ErrorCode.BREAKER_OPEN, 'Karn breaker open; rejecting blueprint selection', {
        details: { breaker: this.#breaker.name },
      });
    }
    const startMs = this.#clock.monotonicMs();
    let selection: KarnSelection;
    try {
      const entry = this.#choose(options);
      const id = entry.descriptor.blueprintId;
      const parameters = this.validateParameters(id, { ...midpointParameters(entry.descriptor), ...(options.parameters ?? {}) });
      selection = {
        descriptor: clone(BlueprintDescriptorSchema, entry.descriptor),
        parameters,
        family: entry.descriptor.family as FamilyId,
        latencyMs: this.#clock.monotonicMs() - startMs,
      };
    } catch (error) {
      this.#bump(KarnMetric.REQUESTS_FAILED);
      this.#breaker.recordFailure(isEsperError(error) ? error.code : String(error));
      this.#pendingEvents.push({
        description: KarnEvent.SELECTION_FAILED,
        level: TelemetryLevel.WARNING,
        attributes: { error: errorLabel(error) },
      });
      this.#flush();
      throw error;
    }
    this.#bump(KarnMetric.REQUESTS_TOTAL);
    this.#metrics.set(KarnMetric.SELECTION_LATENCY_MS, selection.latencyMs);
    const tierMetric = TIER_METRIC[selection.descriptor.tier];
    if (tierMetric !== undefined) this.#bump(tierMetric);
    this.#breaker.recordSuccess();
    this.#pendingEvents.push({
      description: KarnEvent.SELECTION_SUCCEEDED,
      level: TelemetryLevel.INFO,
      attributes: {
        blueprint_id: selection.descriptor.blueprintId,
        tier: `BLUEPRINT_TIER_${BlueprintTier[selection.descriptor.tier] ?? 'UNSPECIFIED'}`,
        latency_ms: selection.latencyMs.toFixed(2),
        family: selection.family,
      },
    });
    this.#flush();
    return selection;
  }

  /**
   * Builds blueprint `id` as a seed module for `site`. Parameters default to the bound
   * midpoints and are validated; throws `KARN_SITE_UNSUPPORTED` when the family does not
   * fit the site. The caller owns the module and must `dispose()` it.
   */
  build(id: string, site: SeedSiteDescriptor, options: BuildOptions): SeedModule {
    const entry = this.#entry(id);
    const family = this.#family(entry);
    if (!family.fits(site)) {
      throw new EsperError(
        ErrorCode.KARN_SITE_UNSUPPORTED,
        `blueprint ${id} (${family.id}) does not fit site shape [${site.shape.join(', ')}]`,
        {
          details: { blueprintId: id, family: family.id, siteKind: site.kind },
        },
      );
    }
    const params = this.validateParameters(id, options.parameters ?? midpointParameters(entry.descriptor));
    const knobs = resolveKnobs(family.id, family.knobs, entry.toKnobs(params));
    return family.build(knobs, site, { blueprintId: id, scope: options.scope ?? id, rng: seededRng(options.seed) });
  }

  /** A copy of the metrics (names in {@link KarnMetric}). */
  metricsSnapshot(): Record<string, number> {
    return Object.fromEntries(this.#metrics);
  }

  /** The selection breaker's snapshot. */
  breakerSnapshot(): CircuitBreakerSnapshot {
    return this.#breaker.snapshot();
  }

  #entry(id: string): BlueprintEntry {
    const entry = this.#entries.get(id);
    if (entry === undefined) {
      throw new EsperError(ErrorCode.KARN_BLUEPRINT_NOT_FOUND, `unknown blueprint '${id}'`, { details: { blueprintId: id } });
    }
    return entry;
  }

  #family(entry: BlueprintEntry): FamilyConfig {
    return familyById(entry.descriptor.family) as FamilyConfig;
  }

  #choose(options: SelectOptions): BlueprintEntry {
    const candidates = [...this.#entries.values()]
      .filter((e) => options.tier === undefined || e.descriptor.tier === options.tier)
      .filter((e) => options.allowQuarantine === true || !e.descriptor.quarantineOnly)
      .filter((e) => this.#family(e).fits(options.site))
      .sort((a, b) =>
        a.descriptor.blueprintId < b.descriptor.blueprintId ? -1 : a.descriptor.blueprintId > b.descriptor.blueprintId ? 1 : 0,
      );
    if (candidates.length === 0) {
      throw new EsperError(ErrorCode.KARN_NO_CANDIDATES, 'no blueprints available for the requested criteria', {
        details: { tier: options.tier ?? 0, siteKind: options.site.kind, allowQuarantine: options.allowQuarantine === true },
      });
    }
    let index = 0;
    if (options.rng !== undefined) index = options.rng.nextInt(candidates.length);
    else if (options.context !== undefined) index = contextIndex(options.context, candidates.length);
    return candidates[index] as BlueprintEntry;
  }

  #bump(metric: KarnMetric): void {
    this.#metrics.set(metric, (this.#metrics.get(metric) ?? 0) + 1);
  }

  #flush(): void {
    const events = this.#pendingEvents;
    this.#pendingEvents = [];
    if (this.#telemetry === undefined) return;
    this.#telemetry.emit(
      buildTelemetryPacket({
        source: KARN_TELEMETRY_SOURCE,
        clock: this.#clock,
        events,
        metrics: [...this.#metrics].map(([name, value]) => ({ name, value, unit: METRIC_UNITS[name] })),
      }),
    );
  }
}

function parameterError(id: string, parameter: string, problem: string, message: string): EsperError {
  return new EsperError(ErrorCode.KARN_PARAMETER_INVALID, message, { details: { blueprintId: id, parameter, problem } });
}
