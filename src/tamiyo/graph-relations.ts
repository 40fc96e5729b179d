/** The relations of Tamiyo's policy graph: one table, in the fixed order of `PolicyGraph.edges`. */
import type { NodeType, RelationSpec } from './graph-types.js';

/**
 * Relation table: internal key, then `src --name--> dst`. The first 21 are the reference's
 * (§5.8), the last 7 relate host sites.
 */
const RELATION_TABLE = [
  ['influences', 'global', 'influences', 'seed'],
  ['reports', 'seed', 'reports', 'global'],
  ['annotates', 'global', 'annotates', 'blueprint'],
  ['annotatedBy', 'blueprint', 'annotated_by', 'global'],
  ['peer', 'seed', 'peer', 'seed'],
  ['operates', 'global', 'operates', 'layer'],
  ['feedback', 'layer', 'feedback', 'global'],
  ['activates', 'layer', 'activates', 'activation'],
  ['affects', 'activation', 'affects', 'layer'],
  ['configures', 'activation', 'configures', 'parameter'],
  ['modulates', 'parameter', 'modulates', 'activation'],
  ['allowed', 'seed', 'allowed', 'parameter'],
  ['associated', 'parameter', 'associated', 'seed'],
  ['composes', 'blueprint', 'composes', 'layer'],
  ['belongsTo', 'layer', 'belongs_to', 'blueprint'],
  ['energizes', 'blueprint', 'energizes', 'activation'],
  ['targets', 'parameter', 'targets', 'blueprint'],
  ['connects', 'layer', 'connects', 'layer'],
  ['monitors', 'seed', 'monitors', 'layer'],
  ['monitoredBy', 'layer', 'monitored_by', 'seed'],
  ['feeds', 'layer', 'feeds', 'activation'],
  ['operatesSite', 'global', 'operates_site', 'site'],
  ['reportsSite', 'site', 'reports_site', 'global'],
  ['occupies', 'seed', 'occupies', 'site'],
  ['hosts', 'site', 'hosts', 'seed'],
  ['fits', 'blueprint', 'fits', 'site'],
  ['accepts', 'site', 'accepts', 'blueprint'],
  ['next', 'site', 'next', 'site'],
] as const satisfies readonly (readonly [string, NodeType, string, NodeType])[];

/** Internal key of a relation. */
export type RelationKey = (typeof RELATION_TABLE)[number][0];

/** Every relation of a {@link PolicyGraph}, in the fixed order of `PolicyGraph.edges`. */
export const GRAPH_RELATIONS: readonly RelationSpec[] = Object.freeze(
  RELATION_TABLE.map(([, src, name, dst]) => Object.freeze({ src, name, dst } satisfies RelationSpec)),
);

/** Position of each relation in {@link GRAPH_RELATIONS}. */
export const RELATION_INDEX = Object.fromEntries(RELATION_TABLE.map(([key], i) => [key, i])) as Record<RelationKey, number>;
