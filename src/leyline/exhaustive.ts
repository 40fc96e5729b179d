/**
 * Compile-time exhaustiveness for `switch` over enums and oneof cases: the `default`
 * branch calls `assertNever(x)`, which only type-checks when every case is handled.
 */
export function assertNever(value: never, what = 'value'): never {
  throw new TypeError(`unhandled ${what}: ${String(value)}`);
}
