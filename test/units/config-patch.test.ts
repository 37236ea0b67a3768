import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { applyMergePatch, commitBody, type EditableConfig, type Json, type JsonObject, mergePatchBetween, reapply } from '../../web/src/config-patch.js';

// The dashboard editor's JSON Merge Patch (RFC 7386): the patch between two configs, applied to the
// first, gives the second; re-applying an edit on another head keeps both sides' changes.

/** JSON objects without nulls (a null in a merge patch means "remove", so a config cannot carry one through it). */
const jsonWithoutNull: fc.Arbitrary<Json> = fc.letrec<{ value: Json }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.boolean(),
    fc.integer(),
    fc.string(),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.constantFrom('a', 'b', 'c', 'prompt', 'agent'), tie('value'), { maxKeys: 4 }),
  ),
})).value;
const objectWithoutNull = fc.dictionary(fc.constantFrom('a', 'b', 'c', 'prompt', 'agent'), jsonWithoutNull, { maxKeys: 4 }) as fc.Arbitrary<JsonObject>;

describe('the editor merge patch', () => {
  it('applying the patch between two objects to the first gives the second', () => {
    fc.assert(
      fc.property(objectWithoutNull, objectWithoutNull, (from, to) => {
        const patch = mergePatchBetween(from, to);
        expect(patch === undefined ? from : applyMergePatch(from, patch)).toEqual(to);
      }),
    );
  });

  it('is empty exactly when nothing changed', () => {
    fc.assert(
      fc.property(objectWithoutNull, (config) => {
        expect(mergePatchBetween(config, structuredClone(config))).toBeUndefined();
      }),
    );
    expect(mergePatchBetween({ a: 1 }, { a: 2 })).toEqual({ a: 2 });
    expect(mergePatchBetween({ a: 1, b: { c: 1 } }, { b: {} })).toEqual({ a: null, b: { c: null } });
  });

  it("re-applies one's edit on a head someone else moved: both changes kept, the edit winning a field both changed", () => {
    const config = (agent: JsonObject, name = 'Agent'): EditableConfig => ({ name, tags: [], conversation_config: { agent }, platform_settings: {}, workflow: {} });
    const base = config({ first_message: 'Hi', prompt: { prompt: 'P', llm: 'x' } });
    const mine = config({ first_message: 'Hi', prompt: { prompt: 'Mine', llm: 'x' } });
    const theirs = config({ first_message: 'Hello', prompt: { prompt: 'Theirs', llm: 'y' } }, 'Renamed');
    expect(reapply(base, mine, theirs)).toEqual(config({ first_message: 'Hello', prompt: { prompt: 'Mine', llm: 'y' } }, 'Renamed'));
    expect(commitBody(base, mine)).toEqual({ conversation_config: { agent: { prompt: { prompt: 'Mine' } } } });
    expect(commitBody(base, base)).toEqual({});
  });
});
