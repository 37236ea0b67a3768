import { setImmediate } from 'node:timers/promises';

/**
 * Most values bound in one `in (…)` list or one multi-row insert. SQLite refuses a statement with
 * more than 32,766 bound variables ("too many SQL variables") and PostgreSQL more than 65,535, so
 * a list whose length the caller does not bound (the nodes of a document, every branch of an
 * agent) is queried in slices of this size: one statement per slice, the results concatenated.
 */
export const MAX_BOUND_VALUES = 1_000;

/** Runs `query` on slices of `values` no longer than `MAX_BOUND_VALUES` and concatenates the rows. */
export async function queryInSlices<V, R>(values: readonly V[], query: (slice: V[]) => Promise<R[]>): Promise<R[]> {
  if (values.length === 0) return [];
  if (values.length <= MAX_BOUND_VALUES) return query([...values]);
  const rows: R[] = [];
  for (let start = 0; start < values.length; start += MAX_BOUND_VALUES) {
    // SQLite answers at once: let other requests run between statements.
    if (start > 0) await setImmediate();
    for (const row of await query(values.slice(start, start + MAX_BOUND_VALUES))) rows.push(row);
  }
  return rows;
}
