/**
 * Readable names of the Leyline enums the view shows: the generated name without its
 * prefix (`SEED_STAGE_BLENDING` → `BLENDING`, `COMMAND_SEED` → `SEED`).
 */

/** A generated TypeScript enum object (numbers map back to names). */
type EnumObject = Readonly<Record<number, string>>;

/** The name of `value` in `enumObject` without `prefix`; the number for unknown values. */
export function enumName(enumObject: EnumObject, value: number, prefix = ''): string {
  const name = enumObject[value];
  if (name === undefined) return String(value);
  return stripPrefix(name, prefix);
}

/** `name` without `prefix` when it starts with it. */
export function stripPrefix(name: string, prefix: string): string {
  return prefix.length > 0 && name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/** Prefixes the generated enums keep (the rest were stripped by protoc-gen-es). */
export const EnumPrefix = {
  SEED_STAGE: 'SEED_STAGE_',
  COMMAND_TYPE: 'COMMAND_',
  SEED_OPERATION: 'SEED_OP_',
} as const;
