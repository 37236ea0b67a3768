export interface LruLimits<V> {
  /** Most entries kept. */
  maxEntries: number;
  /** Most bytes kept, as `sizeOf` counts them; an entry larger than this is not kept at all (but see `keepOversized`). */
  maxBytes?: number;
  sizeOf?: (value: V) => number;
  /**
   * An entry larger than `maxBytes` is kept alone (every other goes) rather than not at all: for
   * values that are costly to build again and used again at once, where refusing one would
   * rebuild it on every use.
   */
  keepOversized?: boolean;
}

/**
 * A least-recently-used map bounded by entry count and, optionally, by bytes. A value's size is
 * taken when it is set: a value that grows is set again to be counted anew.
 */
export class LruCache<K, V> {
  private readonly entries = new Map<K, { value: V; size: number }>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private readonly sizeOf?: (value: V) => number;
  private readonly keepOversized: boolean;
  private byteCount = 0;
  /** The most recently used key (when `hasNewest`): reading it again moves nothing. */
  private newest: K | undefined;
  private hasNewest = false;
  /** Lookups that found / did not find an entry (for metrics). */
  hits = 0;
  misses = 0;

  constructor(limits: number | LruLimits<V>) {
    const resolved = typeof limits === 'number' ? { maxEntries: limits } : limits;
    this.maxEntries = resolved.maxEntries;
    this.maxBytes = resolved.maxBytes ?? Number.POSITIVE_INFINITY;
    this.sizeOf = resolved.sizeOf;
    this.keepOversized = resolved.keepOversized ?? false;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    // A hot key read over and over is already the newest: no Map delete and insert for it.
    if (!this.hasNewest || this.newest !== key) {
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.newest = key;
      this.hasNewest = true;
    }
    return entry.value;
  }

  /** The value, without counting a lookup or a use. */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  set(key: K, value: V): void {
    this.delete(key);
    const size = this.sizeOf ? this.sizeOf(value) : 0;
    if (size > this.maxBytes && !this.keepOversized) return;
    this.byteCount += size;
    this.entries.set(key, { value, size });
    this.newest = key;
    this.hasNewest = true;
    while (this.entries.size > this.maxEntries || this.byteCount > this.maxBytes) {
      const oldest = this.entries.keys().next();
      // The entry just set is the newest: it is reached last, when it is oversized alone.
      if (oldest.done || (this.keepOversized && oldest.value === key)) break;
      this.delete(oldest.value);
    }
  }

  delete(key: K): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    this.byteCount -= entry.size;
    this.entries.delete(key);
    if (this.hasNewest && this.newest === key) {
      this.hasNewest = false;
      this.newest = undefined;
    }
  }

  clear(): void {
    this.entries.clear();
    this.byteCount = 0;
    this.hasNewest = false;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Bytes held, as `sizeOf` counts them (0 without one). */
  get bytes(): number {
    return this.byteCount;
  }
}
