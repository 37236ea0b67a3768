import type { Change, Json } from '../api/edit';
import { shown } from './edit-model';

// A list of changed fields with their before and after values, shared by the edit, merge and
// proposal screens (the server's path-by-path diff, or a preview's changes).

export interface ChangeRow {
  path: string;
  before: Json | undefined;
  after: Json | undefined;
  /** A mark beside the path ("also changed by you"). */
  note?: string;
}

export function changeRowsOf(changes: Change[]): ChangeRow[] {
  return changes.map((change) => ({
    path: `${change.section}.${change.path}`,
    before: change.kind === 'added' ? undefined : change.before,
    after: change.kind === 'removed' ? undefined : change.after,
  }));
}

/** A dense table of changes (path, before, after); long values wrap and scroll inside their cell. */
export function ChangesTable({ caption, rows, beforeLabel = 'Before', afterLabel = 'After', empty = 'No changes.' }: {
  caption: string;
  rows: ChangeRow[];
  beforeLabel?: string;
  afterLabel?: string;
  empty?: string;
}) {
  return (
    <div class="table-wrap">
      <table class="table changes">
        <caption class="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">{beforeLabel}</th>
            <th scope="col">{afterLabel}</th>
          </tr>
        </thead>
        <tbody>
          {rows.length === 0 ? (
            <tr>
              <td class="empty" colSpan={3}>
                {empty}
              </td>
            </tr>
          ) : (
            rows.map((row) => (
              <tr key={row.path}>
                <th scope="row" class="mono change-path">
                  {row.path}
                  {row.note && <span class="badge badge-warning">{row.note}</span>}
                </th>
                <td>
                  <pre class="value value-before">{shown(row.before)}</pre>
                </td>
                <td>
                  <pre class="value value-after">{shown(row.after)}</pre>
                </td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}
