import { ANY_TEXT_KEYS } from '../domain/sections.js';

/**
 * Text the databases cannot hold the same way: a NUL character (PostgreSQL refuses it) and lone
 * UTF-16 surrogates (not Unicode; SQLite and PostgreSQL would store them differently). Config
 * sections are stored as escaped JSON text, so they may contain anything JSON can.
 */
const BAD_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export function hasBadText(text: string): boolean {
  return BAD_TEXT.test(text);
}

/** The path of the first string field with bad text, outside the sections stored as JSON (`anyText` in domain/sections.ts). */
export function findBadText(value: unknown, path: (string | number)[] = []): (string | number)[] | undefined {
  if (typeof value === 'string') return hasBadText(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findBadText(value[i], [...path, i]);
      if (found) return found;
    }
    return undefined;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, member] of Object.entries(value)) {
      if (path.length === 0 && ANY_TEXT_KEYS.has(key)) continue;
      const found = findBadText(member, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}
