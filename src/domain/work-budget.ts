/**
 * A budget of work for synchronous code that can give up part-way: code that may be asked to do
 * a lot (filling a large document's defaults, encoding it) calls `spend` for each unit of work, and
 * `withinBudget` stops it once the budget is gone, so the caller can move the work off the event
 * loop (src/compute) instead. Work finished before the stop stays in the caches it filled.
 */
class OverBudget extends Error {}

/** What `withinBudget` returns when the work did not fit. */
export const OVER_BUDGET = Symbol('over budget');

let remaining = Number.POSITIVE_INFINITY;

export function spend(units = 1): void {
  remaining -= units;
  if (remaining < 0) throw new OverBudget();
}

export function withinBudget<T>(units: number, work: () => T): T | typeof OVER_BUDGET {
  const saved = remaining;
  remaining = units;
  try {
    return work();
  } catch (error) {
    if (error instanceof OverBudget) return OVER_BUDGET;
    throw error;
  } finally {
    remaining = saved;
  }
}
