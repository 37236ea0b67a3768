import { diffWords } from 'diff';

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
                <th scope="row" class="mono edit-change-path">
                  {row.path}
                  {row.note && <span class="badge badge-warning">{row.note}</span>}
                </th>
                {isLongTextChange(row) ? (
                  <WordDiffCells before={row.before as string} after={row.after as string} />
                ) : (
                  <>
                    <td>
                      <pre class="edit-value edit-value-before">{shown(row.before)}</pre>
                    </td>
                    <td>
                      <pre class="edit-value edit-value-after">{shown(row.after)}</pre>
                    </td>
                  </>
                )}
              </tr>
            ))
          )}
        </tbody>
      </table>
    </div>
  );
}

/** Two strings, one of them long (a prompt): a word diff reads better than two blocks of text. */
function isLongTextChange(row: ChangeRow): boolean {
  return typeof row.before === 'string' && typeof row.after === 'string' && Math.max(row.before.length, row.after.length) > 60;
}

/** The before and after cells of a long text, the removed words marked in one and the added in the other. */
function WordDiffCells({ before, after }: { before: string; after: string }) {
  const parts = diffWords(before, after);
  return (
    <>
      <td>
        <pre class="edit-value">
          {parts.filter((part) => !part.added).map((part, index) => (part.removed ? <del key={index}>{part.value}</del> : <span key={index}>{part.value}</span>))}
        </pre>
      </td>
      <td>
        <pre class="edit-value">
          {parts.filter((part) => !part.removed).map((part, index) => (part.added ? <ins key={index}>{part.value}</ins> : <span key={index}>{part.value}</span>))}
        </pre>
      </td>
    </>
  );
}
