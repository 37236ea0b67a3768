/** Cells, segments and retention count in UTC days since the epoch. */
export const DAY_MS = 86_400_000;

export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}
