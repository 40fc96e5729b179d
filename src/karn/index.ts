/**
 * Karn: the blueprint catalog (50 default descriptors over 13 module families), parameter
 * validation, breaker-guarded selection by tier and site, and seed-module construction.
 * Other subsystems import only from this file.
 */
export {
  contextIndex,
  KarnCatalog,
  midpointParameters,
  type BuildOptions,
  type KarnCatalogOptions,
  type KarnSelection,
  type ListOptions,
  type SelectOptions,
} from './catalog.js';
export { DEFAULT_BLUEPRINTS, type BlueprintEntry, type BlueprintParameters } from './catalog-data.js';
export {
  channelsOf,
  FamilyId,
  isConvSite,
  isDenseSite,
  isPointwiseSite,
  MAX_ATTENTION_TOKENS,
  resolveKnobs,
  type BuildContext,
  type FamilyConfig,
  type KnobSpec,
  type Knobs,
  type SeedModule,
} from './family.js';
export { familyById, SEED_FAMILIES } from './families/register-all.js';
export { KARN_TELEMETRY_SOURCE, KarnEvent, KarnMetric } from './names.js';
