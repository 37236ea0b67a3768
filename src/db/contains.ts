import { type Expression, sql, type SqlBool } from 'kysely';

/**
 * `lower(column) LIKE '%text%'`, case-insensitive, with `%`, `_` and `\` in the text matched
 * literally (both dialects: `ESCAPE '\'`).
 */
export function containsText(column: string, text: string): Expression<SqlBool> {
  const pattern = `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return sql<SqlBool>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
}
