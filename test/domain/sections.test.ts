import { describe, expect, it, vi } from 'vitest';

/*
 * The registry's derived lists, from a module imported inside each test: `CONFIG_SECTION_NAMES`
 * and `ANY_TEXT_KEYS` are computed when the module loads, and a mutation run only counts what a
 * test reaches (test/sections.test.ts checks that merge, diff and reads walk these lists).
 */
async function freshSections(): Promise<typeof import('../../src/domain/sections.js')> {
  vi.resetModules();
  return import('../../src/domain/sections.js');
}

describe('the section registry', () => {
  it('names the upstream config sections, in the registry’s order', async () => {
    const { CONFIG_SECTION_NAMES, SECTION_NAMES } = await freshSections();
    expect(CONFIG_SECTION_NAMES).toEqual(['conversation_config', 'platform_settings', 'workflow']);
    expect(SECTION_NAMES).toEqual(['conversation_config', 'platform_settings', 'workflow', 'agent', 'procedures']);
  });

  it('lets any text through in the config sections only: not in the name and tags', async () => {
    const { ANY_TEXT_KEYS } = await freshSections();
    expect([...ANY_TEXT_KEYS].sort()).toEqual(['conversation_config', 'platform_settings', 'workflow']);
    expect(ANY_TEXT_KEYS.has('name')).toBe(false);
    expect(ANY_TEXT_KEYS.has('tags')).toBe(false);
  });

  it('configSectionsOf keeps the config sections of a body and drops its other members', async () => {
    const { configSectionsOf } = await freshSections();
    const body = { conversation_config: { v: 1 }, platform_settings: { v: 2 }, workflow: { v: 3 }, name: 'n', tags: ['t'] };
    expect(configSectionsOf(body)).toEqual({ conversation_config: { v: 1 }, platform_settings: { v: 2 }, workflow: { v: 3 } });
    // A section the body lacks is there, undefined: callers spread or test each one.
    const partial = configSectionsOf({ workflow: { v: 3 } });
    expect(Object.keys(partial)).toEqual(['conversation_config', 'platform_settings', 'workflow']);
    expect(partial).toEqual({ workflow: { v: 3 } });
  });
});
