import type { Kysely } from 'kysely';

import type { Database } from '../../db/schema.js';
import { hashNode } from '../../domain/content-tree.js';
import { type Frontier, frontierBody } from '../../domain/frontier.js';
import { LruCache } from '../../domain/lru.js';

/** Version frontiers, stored content-addressed in `blobs` and cached by hash (they never change). */
export class FrontierStore {
  private readonly cache = new LruCache<string, Frontier>(20_000);

  async write(db: Kysely<Database>, frontier: Frontier): Promise<string> {
    const body = frontierBody(frontier);
    const hash = hashNode(body);
    if (this.cache.get(hash) === undefined) {
      await db.insertInto('blobs').values({ hash, body }).onConflict((conflict) => conflict.column('hash').doNothing()).execute();
    }
    return hash;
  }

  async load(db: Kysely<Database>, hash: string | null): Promise<Frontier> {
    if (hash === null) return {};
    const cached = this.cache.get(hash);
    if (cached) return cached;
    const row = await db.selectFrom('blobs').select('body').where('hash', '=', hash).executeTakeFirst();
    if (!row) throw new Error(`missing frontier ${hash}`);
    const frontier = (JSON.parse(row.body) as { f: Frontier }).f;
    this.cache.set(hash, frontier);
    return frontier;
  }
}
