import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

import type { Database } from './schema.js';

/** Stands for the call's parameter at `index` while a query is compiled once. */
class Parameter {
  constructor(readonly index: number) {}
}

/**
 * A query compiled once per dialect, then run with each call's parameters: for the few fixed-shape
 * statements of the hottest write (the exposure flush runs five a batch). Kysely builds and
 * compiles a small query in 4–10 µs alone, and about ten times that inside a server whose CPU caches
 * a million-unit exposure map shares; longer than the statement takes to run.
 *
 * `build` is called once per dialect, with a stand-in for each parameter, and returns a query
 * builder or compiled raw SQL; every value the query binds must be one of the stand-ins (a constant
 * would be bound as the first call's forever), which is checked when it is compiled.
 */
export function compiledOnce<P extends unknown[], R>(
  build: (db: Kysely<Database>, ...parameters: P) => Compilable<R> | CompiledQuery<R>,
): (db: Kysely<Database>, ...parameters: P) => Promise<QueryResult<R>> {
  // By the dialect's adapter: a transaction's handle shares its database's.
  const compiled = new WeakMap<object, { query: CompiledQuery<R>; slots: number[] }>();
  return async (db, ...parameters) => {
    const adapter = db.getExecutor().adapter;
    let template = compiled.get(adapter);
    if (!template) {
      const built = build(db, ...(parameters.map((_, index) => new Parameter(index)) as P));
      // A builder, or raw SQL compiled by the caller (`sql\`…\`.compile(db)`).
      const query = 'sql' in built ? built : built.compile();
      const slots = query.parameters.map((value) => (value instanceof Parameter ? value.index : -1));
      if (slots.includes(-1)) throw new Error(`compiledOnce: a value bound by \`${query.sql}\` is not one of its parameters`);
      template = { query, slots };
      compiled.set(adapter, template);
    }
    const { query, slots } = template;
    return db.executeQuery<R>({ ...query, parameters: slots.map((slot) => parameters[slot]) });
  };
}
