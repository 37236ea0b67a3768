import { type Kysely, PostgresAdapter, type RawBuilder, sql } from 'kysely';

import type { Database } from './schema.js';

/** The SQL type of a column read from JSON. */
export type JsonColumnType = 'text' | 'integer' | 'real';

/**
 * Rows as a `select` over one JSON parameter: `insert into t (cols) <this> …`. A multi-row
 * `values` list of 1,000 rows × 8 columns costs Kysely tens of milliseconds to build and compile
 * (and SQLite as long to prepare); one JSON text costs a `JSON.stringify`, and the statement's text
 * stays the same whatever the number of rows. SQLite: `json_each`; PostgreSQL: `jsonb_to_recordset`.
 */
export function selectJsonRows(db: Kysely<Database>, columns: Record<string, JsonColumnType>, rows: readonly Record<string, unknown>[]): RawBuilder<unknown> {
  return selectJsonText(db, columns, jsonRows(columns, rows));
}

/** The rows as `selectJsonRows` binds them: one JSON text, an array of each row's values in column order. */
export function jsonRows(columns: Record<string, JsonColumnType>, rows: readonly Record<string, unknown>[]): string {
  const names = Object.keys(columns);
  return JSON.stringify(rows.map((row) => names.map((name) => row[name] ?? null)));
}

/** `selectJsonRows` over `json`, bound as it is: `jsonRows`'s text (or a stand-in for it: `compiledOnce`). */
export function selectJsonText(db: Kysely<Database>, columns: Record<string, JsonColumnType>, json: unknown): RawBuilder<unknown> {
  const names = Object.keys(columns);
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    const pgType = { text: 'text', integer: 'bigint', real: 'double precision' } as const;
    const select = names.map((name, index) => sql`(r.value ->> ${sql.lit(index)})::${sql.raw(pgType[columns[name]])}`);
    return sql`select ${sql.join(select)} from jsonb_array_elements(${json}::jsonb) as r(value)`;
  }
  // `where true`: SQLite needs it before an upsert's `on conflict` after a select.
  const select = names.map((name, index) => sql`json_extract(r.value, ${sql.lit(`$[${index}]`)})`);
  return sql`select ${sql.join(select)} from json_each(${json}) as r where true`;
}

/** `(a, b, c)`: the column list of an insert whose rows are `selectJsonRows`'s. */
export function columnList(columns: Record<string, JsonColumnType>): RawBuilder<unknown> {
  return sql`(${sql.join(Object.keys(columns).map((name) => sql.ref(name)))})`;
}

/**
 * `(…)` of text values for `column in <this>`, as one JSON parameter (the same reason as
 * `selectJsonRows`: a 1,000-value list costs Kysely milliseconds to build and compile).
 */
export function jsonTextList(db: Kysely<Database>, values: readonly string[]): RawBuilder<string> {
  const json = JSON.stringify(values);
  if (db.getExecutor().adapter instanceof PostgresAdapter) return sql`(select jsonb_array_elements_text(${json}::jsonb))`;
  return sql`(select value from json_each(${json}))`;
}
