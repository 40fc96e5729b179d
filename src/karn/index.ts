/**
 * Karn: the blueprint catalog (55 default descriptors over 14 module families), parameter
 * validation, breaker-guarded selection by tier and site, and seed-module construction.
 * Other subsystems import only from this file.
 */
export { KarnCatalog } from './catalog.js';
export { DEFAULT_BLUEPRINTS, type BlueprintParameters } from './catalog-data.js';
export { FamilyId, type GradientInit, type GraftInit, type SeedModule } from './family.js';
export { familyById } from './families/register-all.js';
