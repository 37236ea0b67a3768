import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

import { describe, expect, it } from 'vitest';

import { CONFIG_SECTION_NAMES, type DocumentKey, SECTION_NAMES, SECTIONS, type SectionName } from '../src/domain/sections.js';
import { type AgentDocument, emptyDocument, visibleDocument } from '../src/features/agents/agent-document.js';
import { applyConfigChanges, type ConfigChanges, newConfig } from '../src/features/agents/config-changes.js';
import { mergeAndFill, type Section } from '../src/features/merges/merge-documents.js';
import { diffDocuments, type DocumentChange } from '../src/features/versions/document-diff.js';
import { findBadText } from '../src/http/text.js';

/*
 * domain/sections.ts is the one list of the document's sections: the document type, the sections
 * of merge conflicts and diff changes, and what merge, diff, reads and the bad-text check walk
 * all come from it.
 */

// Checked by tsc (`npm test` runs it first): the types that name sections are the registry's.
type KnownKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const typesFollowTheRegistry: [
  Same<KnownKeys<AgentDocument>, DocumentKey>,
  Same<Section, SectionName>,
  Same<DocumentChange['section'], SectionName>,
  Same<keyof ConfigChanges, (typeof CONFIG_SECTION_NAMES)[number] | 'name' | 'tags'>,
] = [true, true, true, true];

/** A document whose every section differs from the base's, in a way of its own (`mark`). */
function changedEverywhere(base: AgentDocument, mark: string): AgentDocument {
  const changes: ConfigChanges = { name: `name ${mark}`, tags: [`tag ${mark}`] };
  for (const section of CONFIG_SECTION_NAMES) changes[section] = { marker_of_this_test: mark };
  const document = applyConfigChanges({ document: base, agentSettings: {} }, changes).document;
  return { ...document, procedures: { agtprc_marker_of_this_test: `agtprcv_${mark}` } };
}

const DOCUMENT_KEYS = SECTIONS.flatMap((section) => section.keys);

describe('the section registry', () => {
  it('gives the document type its keys', () => {
    expect(typesFollowTheRegistry).toEqual([true, true, true, true]);
    expect(Object.keys(emptyDocument())).toEqual(DOCUMENT_KEYS);
    expect(Object.keys(visibleDocument(newConfig({}).document))).toEqual(DOCUMENT_KEYS);
  });

  it('is what merge and diff walk: a change to every section conflicts and differs in every section', () => {
    const base = newConfig({}).document;
    const [source, target] = [changedEverywhere(base, 'source'), changedEverywhere(base, 'target')];
    const { conflicts } = mergeAndFill(base, source, target, 'source', undefined);
    expect(new Set(conflicts.map((conflict) => conflict.section))).toEqual(new Set(SECTION_NAMES));
    expect(new Set(diffDocuments(source, target).map((change) => change.section))).toEqual(new Set(SECTION_NAMES));
  });

  it('says which sections the bad-text check skips', () => {
    for (const section of SECTIONS) {
      for (const key of section.keys) {
        expect(findBadText({ [key]: { text: 'a\u0000b' } }), `${section.name}.${key}`).toEqual(section.anyText ? undefined : [key, 'text']);
      }
    }
  });

  it('is the only list of them in the source: no other file lists the config sections', () => {
    const root = join(import.meta.dirname, '..', 'src');
    const names = CONFIG_SECTION_NAMES.join('|');
    // An array literal that names two config sections, e.g. ['conversation_config', 'platform_settings', …].
    const list = new RegExp(`\\[[^\\[\\]]*?['"](${names})['"][^\\[\\]]*?['"](?!\\1)(${names})['"]`);
    const listing: string[] = [];
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (/\.(ts|mjs)$/.test(entry.name) && list.test(readFileSync(path, 'utf8'))) listing.push(relative(root, path));
      }
    };
    // What the check finds: a list as the bad-text check kept one before the registry.
    expect(list.test(`const CONFIG_SECTIONS = new Set(['conversation_config', 'platform_settings', 'workflow']);`)).toBe(true);
    walk(root);
    // Only upstream's generated schemas (zConflictSection lists upstream's sections).
    expect(listing).toEqual(['wire/generated/zod.gen.ts']);
  });
});
