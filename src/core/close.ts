/**
 * The close contract of spec 02 in two pieces: {@link closeOnce} (idempotent, every call
 * gets the first call's promise) and {@link runCleanup} (every step runs even if one fails).
 */

/** One cleanup step; `false`, `null` and `undefined` are skipped (for conditional steps). */
export type CleanupStep = (() => unknown) | false | null | undefined;

/**
 * Runs every step in order, awaiting each, whether or not earlier ones failed (a throw and a
 * rejection count the same). Resolves when all succeeded. Otherwise rejects once all ran:
 * with the failure itself when one step failed (its typed code stays visible to callers),
 * with an `AggregateError` of every failure, in step order, when several did.
 *
 * ```ts
 * await runCleanup('stream bus', [() => loop.close(), ownsStore && (() => store.close())]);
 * ```
 */
export async function runCleanup(what: string, steps: Iterable<CleanupStep>): Promise<void> {
  const failures: unknown[] = [];
  for (const step of steps) {
    if (typeof step !== 'function') continue;
    try {
      await step();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) throw new AggregateError(failures, `closing ${what} failed in ${failures.length} steps`);
}

/**
 * Memoises a close function: the first call runs `close` (with that call's arguments), every
 * later call returns the first call's promise and ignores its arguments. A synchronous
 * throw becomes the promise's rejection.
 *
 * ```ts
 * readonly #close = closeOnce(() => runCleanup('library', [() => this.#writes, () => this.#db.close()]));
 * close(): Promise<void> { return this.#close(); }
 * [Symbol.asyncDispose](): Promise<void> { return this.#close(); }
 * ```
 */
export function closeOnce<A extends unknown[], T>(close: (...args: A) => Promise<T>): (...args: A) => Promise<T> {
  let closing: Promise<T> | undefined;
  return (...args: A) => {
    closing ??= (async () => close(...args))();
    return closing;
  };
}
