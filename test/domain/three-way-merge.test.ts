import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { deepEqual, isJsonObject, type Json, type JsonObject } from '../../src/domain/canonical-json.js';
import { type Conflict, diffValues, type MergeOutcome, type Resolution, type Side, threeWayMerge } from '../../src/domain/three-way-merge.js';
import { changedLeaf, jsonValue, tinyJson, withKeysReversed } from './json-arbitraries.js';

/*
 * The oracle for most properties: a base document and a list of edits at locations that are
 * neither equal nor nested, each given to the source, the target, both, or (differently) to each
 * side. Edits at such locations commute, so the expected merge is "apply every edit to the base"
 * (with the winner's edit where the two sides disagree), and the expected conflicts are exactly the
 * locations where they disagree. Keys and ids come from small alphabets so that independent draws
 * share structure, and never contain the path syntax (`.`, `[`, `=`, `]`).
 */

const KEYS = ['a', 'b', 'c', 'd'] as const;
const IDS = ['w', 'x', 'y', 'z', 'v'] as const;

const scalar = fc.constantFrom<Json>(null, true, false, 0, 1, 2.5, '', 'p', 'q');

const docArbs = fc.letrec<{ value: Json; object: JsonObject; keyed: Json[]; plain: Json[] }>((tie) => ({
  value: fc.oneof({ maxDepth: 3, depthIdentifier: 'doc' }, scalar, tie('object'), tie('keyed'), tie('plain')),
  object: fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 4 }) as fc.Arbitrary<JsonObject>,
  // Keyed arrays: objects with a unique `id` (never edited), members from KEYS.
  keyed: fc
    .uniqueArray(fc.record({ id: fc.constantFrom(...IDS), rest: fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 2 }) }), {
      selector: (element) => element.id,
      maxLength: 3,
    })
    .map((elements) => elements.map(({ id, rest }): Json => ({ id, ...rest }))),
  // Arrays of scalars: never keyed, one value for the merge.
  plain: fc.array(scalar, { minLength: 1, maxLength: 3 }),
}));

/** Small documents: any shape of object, keyed array, plain array and scalar. */
const smallValue = docArbs.value;
const smallObject = docArbs.object;

const tool = (id: string) =>
  fc.record({ description: scalar, rest: fc.dictionary(fc.constantFrom(...KEYS), smallValue, { maxKeys: 2 }) }).map(({ description, rest }): JsonObject => ({
    id,
    description,
    ...rest,
  }));

/** A `conversation_config`-like section: nested objects and a keyed `tools` array, plus noise. */
const configLike: fc.Arbitrary<JsonObject> = fc
  .record({
    prompt: scalar,
    tools: fc.uniqueArray(fc.constantFrom(...IDS), { minLength: 1, maxLength: 4 }).chain((ids) => fc.tuple(...ids.map(tool))),
    firstMessage: scalar,
    extra: smallObject,
  })
  .map(({ prompt, tools, firstMessage, extra }) => ({
    agent: { first_message: firstMessage, prompt: { prompt, llm: 'gpt-4o', tools } },
    ...extra,
  }));

const baseDoc: fc.Arbitrary<JsonObject> = fc.oneof(smallObject, configLike);

// ---------------------------------------------------------------------------------------------
// Paths: the same syntax as the implementation (`agent.prompt.tools[id=weather].description`).

type Segment = { key: string } | { field: string; id: string };

function formatPath(segments: Segment[]): string {
  let out = '';
  for (const segment of segments) {
    if ('key' in segment) out = out === '' ? segment.key : `${out}.${segment.key}`;
    else out = `${out}[${segment.field}=${segment.id}]`;
  }
  return out;
}

/** Only for paths over keys without `.`, `[`, `]` and `=` (all of this file's documents). */
function parsePath(path: string): Segment[] {
  if (path === '') return [];
  const segments: Segment[] = [];
  for (const part of path.split('.')) {
    const match = /^([^[]*)((?:\[[^=\]]+=[^\]]*\])*)$/.exec(part);
    if (!match) throw new Error(`unparseable path ${JSON.stringify(path)}`);
    if (match[1] !== '' || segments.length > 0) segments.push({ key: match[1] });
    for (const element of match[2].matchAll(/\[([^=\]]+)=([^\]]*)\]/g)) segments.push({ field: element[1], id: element[2] });
  }
  return segments;
}

function findElement(array: Json[], segment: { field: string; id: string }): number {
  return array.findIndex((element) => isJsonObject(element) && Object.hasOwn(element, segment.field) && String(element[segment.field]) === segment.id);
}

/** The value at a path; `undefined` when absent. */
function valueAtPath(value: Json | undefined, segments: Segment[]): Json | undefined {
  let current = value;
  for (const segment of segments) {
    if (current === undefined) return undefined;
    if ('key' in segment) {
      if (!isJsonObject(current) || !Object.hasOwn(current, segment.key)) return undefined;
      current = current[segment.key];
    } else {
      if (!Array.isArray(current)) return undefined;
      const index = findElement(current, segment);
      current = index < 0 ? undefined : current[index];
    }
  }
  return current;
}

/**
 * A copy with the value at `segments` set (`undefined` deletes). A new array element goes at
 * `position` (clamped), else at the end. The parent must exist.
 */
function withPath(value: Json | undefined, segments: Segment[], replacement: Json | undefined, position?: number): Json | undefined {
  if (segments.length === 0) return replacement;
  const copy = structuredClone(value) as Json;
  const parent = valueAtPath(copy, segments.slice(0, -1));
  const last = segments[segments.length - 1];
  if ('key' in last) {
    if (!isJsonObject(parent)) throw new Error(`no object at ${formatPath(segments.slice(0, -1))}`);
    if (replacement === undefined) delete parent[last.key];
    else parent[last.key] = replacement;
  } else {
    if (!Array.isArray(parent)) throw new Error(`no array at ${formatPath(segments.slice(0, -1))}`);
    const index = findElement(parent, last);
    if (replacement === undefined) {
      if (index >= 0) parent.splice(index, 1);
    } else if (index >= 0) {
      parent[index] = replacement;
    } else {
      parent.splice(position === undefined ? parent.length : Math.min(position, parent.length), 0, replacement);
    }
  }
  return copy;
}

function same(a: Json | undefined, b: Json | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return deepEqual(a, b);
}

const isKeyedArray = (value: Json): value is JsonObject[] =>
  Array.isArray(value) &&
  value.every((element) => isJsonObject(element) && typeof element.id === 'string') &&
  new Set(value.map((element) => (element as JsonObject).id)).size === value.length;

/** Keyed arrays sorted by id, object keys sorted: equal up to the order of keyed elements. */
function normalized(value: Json | undefined): Json | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) {
    const items = value.map((item) => normalized(item) as Json);
    if (items.length > 0 && isKeyedArray(items)) return [...items].sort((x, y) => ((x.id as string) < (y.id as string) ? -1 : 1));
    return items;
  }
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const key of Object.keys(value).sort()) out[key] = normalized(value[key]) as Json;
    return out;
  }
  return value;
}

/** Every keyed array of a document, by path, as its list of ids. */
function keyedArrays(value: Json | undefined, path = '', out = new Map<string, string[]>()): Map<string, string[]> {
  if (Array.isArray(value)) {
    if (value.length > 0 && isKeyedArray(value)) {
      out.set(path, value.map((element) => element.id as string));
      for (const element of value) keyedArrays(element, `${path}[id=${element.id as string}]`, out);
    }
  } else if (isJsonObject(value)) {
    for (const key of Object.keys(value)) keyedArrays(value[key], path === '' ? key : `${path}.${key}`, out);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Locations and edits.

type LocationKind = 'member' | 'newMember' | 'element' | 'newElement';
interface Location {
  segments: Segment[];
  kind: LocationKind;
  current: Json | undefined;
}

/** Where an edit may happen in `value` (an object or a keyed array). Never an element's `id`. */
function locations(value: Json, prefix: Segment[] = []): Location[] {
  const out: Location[] = [];
  if (isJsonObject(value)) {
    for (const key of Object.keys(value)) {
      if (key === 'id') continue;
      const segments = [...prefix, { key }];
      out.push({ segments, kind: 'member', current: value[key] }, ...locations(value[key], segments));
    }
    for (const key of KEYS) if (!Object.hasOwn(value, key)) out.push({ segments: [...prefix, { key }], kind: 'newMember', current: undefined });
  } else if (Array.isArray(value) && (value.length === 0 || isKeyedArray(value))) {
    const present = new Set(value.map((element) => (element as JsonObject).id));
    for (const element of value as JsonObject[]) {
      const segments = [...prefix, { field: 'id', id: element.id as string }];
      out.push({ segments, kind: 'element', current: element }, ...locations(element, segments));
    }
    for (const id of IDS) if (!present.has(id)) out.push({ segments: [...prefix, { field: 'id', id }], kind: 'newElement', current: undefined });
  }
  return out;
}

const sameSegment = (x: Segment, y: Segment) => ('key' in x ? 'key' in y && x.key === y.key : !('key' in y) && x.field === y.field && x.id === y.id);
const isPrefix = (short: Segment[], long: Segment[]) => short.length <= long.length && short.every((segment, i) => sameSegment(segment, long[i]));
const overlap = (x: Segment[], y: Segment[]) => isPrefix(x, y) || isPrefix(y, x);

type Op = { kind: 'set'; value: Json; position?: number } | { kind: 'delete' };
type Who = 'source' | 'target' | 'both' | 'conflict';
interface Edit {
  location: Location;
  who: Who;
  /** The source's op (and the only one unless `who` is 'conflict'). */
  op: Op;
  /** The target's op when `who` is 'conflict'. */
  targetOp: Op;
}

const SOURCE_MARK = 'set by the source';
const TARGET_MARK = 'set by the target';

function elementOf(location: Location): string {
  const last = location.segments[location.segments.length - 1];
  return 'key' in last ? '' : last.id;
}

function opArb(location: Location): fc.Arbitrary<Op> {
  const set = (value: fc.Arbitrary<Json>) => value.map((v): Op => ({ kind: 'set', value: v }));
  const del = fc.constant<Op>({ kind: 'delete' });
  const element = (id: string) => fc.dictionary(fc.constantFrom(...KEYS), smallValue, { maxKeys: 2 }).map((rest): Json => ({ id, ...rest }));
  switch (location.kind) {
    case 'member':
      return fc.oneof(set(smallValue), set(scalar), del);
    case 'newMember':
      return set(smallValue);
    case 'element':
      return fc.oneof(set(element(elementOf(location))), del);
    case 'newElement':
      return fc.tuple(element(elementOf(location)), fc.nat(4)).map(([value, position]): Op => ({ kind: 'set', value, position }));
  }
}

/** Two different ops whose results differ from the base and from each other, and are not both objects. */
function conflictingOpsArb(location: Location): fc.Arbitrary<[Op, Op]> | undefined {
  const setS: Op = { kind: 'set', value: SOURCE_MARK };
  const setT: Op = { kind: 'set', value: TARGET_MARK };
  const del: Op = { kind: 'delete' };
  const id = elementOf(location);
  switch (location.kind) {
    case 'member':
      return fc.constantFrom<[Op, Op]>([setS, setT], [del, setT], [setS, del]);
    case 'newMember':
      return fc.constant<[Op, Op]>([setS, setT]);
    case 'element':
      return fc.constantFrom<[Op, Op]>([del, { kind: 'set', value: { id, mark: TARGET_MARK } }], [{ kind: 'set', value: { id, mark: SOURCE_MARK } }, del]);
    case 'newElement':
      return undefined;
  }
}

function editArb(location: Location, whos: Who[]): fc.Arbitrary<Edit> {
  const conflicting = conflictingOpsArb(location);
  const allowed = whos.filter((who) => who !== 'conflict' || conflicting);
  const plain = fc
    .tuple(fc.constantFrom(...allowed.filter((who) => who !== 'conflict')), opArb(location))
    .map(([who, op]): Edit => ({ location, who, op, targetOp: op }));
  if (!allowed.includes('conflict') || !conflicting) return plain;
  const conflict = conflicting.map(([op, targetOp]): Edit => ({ location, who: 'conflict', op, targetOp }));
  return allowed.length === 1 ? conflict : fc.oneof(plain, conflict);
}

function applyOp(doc: Json | undefined, location: Location, op: Op): Json | undefined {
  return op.kind === 'delete' ? withPath(doc, location.segments, undefined) : withPath(doc, location.segments, op.value, op.position);
}

interface Scenario {
  base: JsonObject;
  edits: Edit[];
  source: Json;
  target: Json;
}

function sideDoc(base: JsonObject, edits: Edit[], side: Side): Json {
  let doc: Json | undefined = base;
  for (const edit of edits) {
    if (side === 'source' && edit.who !== 'target') doc = applyOp(doc, edit.location, edit.op);
    if (side === 'target' && edit.who !== 'source') doc = applyOp(doc, edit.location, edit.who === 'conflict' ? edit.targetOp : edit.op);
  }
  return doc as Json;
}

/** The merge the edits call for: every edit applied, conflicts settled by `choose`. */
function expectedMerge(scenario: Scenario, choose: (edit: Edit) => Op): Json | undefined {
  let doc: Json | undefined = scenario.base;
  for (const edit of scenario.edits) doc = applyOp(doc, edit.location, edit.who === 'conflict' ? choose(edit) : edit.op);
  return doc;
}

function expectedConflicts(scenario: Scenario): Conflict[] {
  return scenario.edits
    .filter((edit) => edit.who === 'conflict')
    .map((edit) => ({
      path: formatPath(edit.location.segments),
      base: valueAtPath(scenario.base, edit.location.segments),
      source: valueAtPath(scenario.source, edit.location.segments),
      target: valueAtPath(scenario.target, edit.location.segments),
    }));
}

function scenarioArb(whos: Who[], maxEdits = 6): fc.Arbitrary<Scenario> {
  return baseDoc.chain((base) =>
    fc
      .constant(locations(base))
      .chain((all) => fc.shuffledSubarray(all, { minLength: Math.min(1, all.length), maxLength: Math.min(maxEdits, all.length) }))
      .map((picked) => {
        const kept: Location[] = [];
        for (const location of picked) if (!kept.some((other) => overlap(other.segments, location.segments))) kept.push(location);
        return kept;
      })
      .chain((kept) => fc.tuple(...kept.map((location) => editArb(location, whos))))
      .map((edits): Scenario => ({ base, edits, source: sideDoc(base, edits, 'source'), target: sideDoc(base, edits, 'target') })),
  );
}

const byPath = (conflicts: Conflict[]) => [...conflicts].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
const paths = (conflicts: Conflict[]) => conflicts.map((conflict) => conflict.path).sort();
const winnerArb = fc.constantFrom<Side>('source', 'target');
const runs = { numRuns: 200 };

/** Independent small documents: they share keys and ids often, and differ in every way. */
const tinyTriple = fc.oneof(fc.tuple(tinyJson, tinyJson, tinyJson), fc.tuple(smallValue, smallValue, smallValue));
/** Triples from edits, and independent ones. */
const anyTriple: fc.Arbitrary<[Json, Json, Json]> = fc.oneof(
  scenarioArb(['source', 'target', 'both', 'conflict']).map((s): [Json, Json, Json] => [s.base, s.source, s.target]),
  tinyTriple,
);

// ---------------------------------------------------------------------------------------------

describe('threeWayMerge: examples', () => {
  const config = (prompt: string, weather: string, crm: string) => ({
    agent: {
      first_message: 'Hello',
      prompt: {
        prompt,
        llm: 'gpt-4o',
        tools: [
          { id: 'weather', type: 'webhook', description: weather },
          { id: 'crm', type: 'webhook', description: crm },
        ],
      },
    },
    tts: { voice_id: 'v1', stability: 0.5 },
  });

  it('both sides edit the prompt and different tools: one conflict at the prompt, both tool edits kept', () => {
    const base = config('A', 'w', 'c');
    const source = config('B', 'w2', 'c');
    const target = config('C', 'w', 'c2');
    for (const winner of ['source', 'target'] as const) {
      const outcome = threeWayMerge(base, source, target, { winner });
      expect(outcome.conflicts).toEqual([{ path: 'agent.prompt.prompt', base: 'A', source: 'B', target: 'C' }]);
      expect(outcome.merged).toEqual(config(winner === 'source' ? 'B' : 'C', 'w2', 'c2'));
    }
    const resolved = threeWayMerge(base, source, target, { winner: 'target', resolutions: new Map([['agent.prompt.prompt', { value: 'D' }]]) });
    expect(resolved.merged).toEqual(config('D', 'w2', 'c2'));
    expect(resolved.conflicts.map((conflict) => conflict.path)).toEqual(['agent.prompt.prompt']);
  });

  it('both sides editing different fields of the same tool is no conflict', () => {
    const base = { tools: [{ id: 'weather', description: 'w', url: 'u' }] };
    const outcome = threeWayMerge(base, { tools: [{ id: 'weather', description: 'w2', url: 'u' }] }, { tools: [{ id: 'weather', description: 'w', url: 'u2' }] }, { winner: 'target' });
    expect(outcome).toEqual({ merged: { tools: [{ id: 'weather', description: 'w2', url: 'u2' }] }, conflicts: [] });
  });

  it('both sides editing the same field of a tool differently conflicts at that field', () => {
    const base = { tools: [{ id: 'weather', description: 'w' }] };
    const outcome = threeWayMerge(base, { tools: [{ id: 'weather', description: 's' }] }, { tools: [{ id: 'weather', description: 't' }] }, { winner: 'source' });
    expect(outcome.conflicts).toEqual([{ path: 'tools[id=weather].description', base: 'w', source: 's', target: 't' }]);
    expect(outcome.merged).toEqual({ tools: [{ id: 'weather', description: 's' }] });
  });

  it('keeps both sides’ additions to a keyed array: target order, the source’s new element after the one it followed', () => {
    const base = { tools: [{ id: 'a' }, { id: 'b' }] };
    const source = { tools: [{ id: 'a' }, { id: 'x' }, { id: 'b' }] };
    const target = { tools: [{ id: 'a' }, { id: 'b' }, { id: 'y' }] };
    const outcome = threeWayMerge(base, source, target, { winner: 'target' });
    expect(outcome).toEqual({ merged: { tools: [{ id: 'a' }, { id: 'x' }, { id: 'b' }, { id: 'y' }] }, conflicts: [] });
  });

  it('a deletion on one side with no change on the other deletes; deleted on one side and edited on the other conflicts', () => {
    const base = { tools: [{ id: 'a', d: 1 }, { id: 'b', d: 1 }] };
    expect(threeWayMerge(base, { tools: [{ id: 'b', d: 1 }] }, { tools: [{ id: 'a', d: 1 }, { id: 'b', d: 2 }] }, { winner: 'target' })).toEqual({
      merged: { tools: [{ id: 'b', d: 2 }] },
      conflicts: [],
    });
    const outcome = threeWayMerge(base, { tools: [{ id: 'b', d: 1 }] }, { tools: [{ id: 'a', d: 2 }, { id: 'b', d: 1 }] }, { winner: 'source' });
    expect(outcome).toEqual({
      merged: { tools: [{ id: 'b', d: 1 }] },
      conflicts: [{ path: 'tools[id=a]', base: { id: 'a', d: 1 }, source: undefined, target: { id: 'a', d: 2 } }],
    });
  });

  it('an absent key is not null: removing on one side and nulling on the other conflicts', () => {
    const outcome = threeWayMerge({ a: 1 }, {}, { a: null }, { winner: 'source' });
    expect(outcome).toEqual({ merged: {}, conflicts: [{ path: 'a', base: 1, source: undefined, target: null }] });
    expect(threeWayMerge({ a: 1 }, {}, { a: null }, { winner: 'target' }).merged).toEqual({ a: null });
    // Setting null on one side only is a change like any other.
    expect(threeWayMerge({ a: 1 }, { a: null }, { a: 1, b: 2 }, { winner: 'target' })).toEqual({ merged: { a: null, b: 2 }, conflicts: [] });
  });

  it('keys by `tool_id`, then `name`, when `id` does not identify every element', () => {
    const byToolId = threeWayMerge(
      { t: [{ tool_id: 'a', v: 0 }, { tool_id: 'b', v: 0 }] },
      { t: [{ tool_id: 'a', v: 1 }, { tool_id: 'b', v: 0 }] },
      { t: [{ tool_id: 'a', v: 0 }, { tool_id: 'b', v: 1 }] },
      { winner: 'target' },
    );
    expect(byToolId).toEqual({ merged: { t: [{ tool_id: 'a', v: 1 }, { tool_id: 'b', v: 1 }] }, conflicts: [] });
    // `id` is present but not unique: `name` keys the array.
    const byName = threeWayMerge(
      { t: [{ id: 1, name: 'a', v: 0 }, { id: 1, name: 'b', v: 0 }] },
      { t: [{ id: 1, name: 'a', v: 1 }, { id: 1, name: 'b', v: 0 }] },
      { t: [{ id: 1, name: 'a', v: 2 }, { id: 1, name: 'b', v: 0 }] },
      { winner: 'target' },
    );
    expect(byName.conflicts.map((conflict) => conflict.path)).toEqual(['t[name=a].v']);
  });

  it('arrays that are not keyed are one value', () => {
    const outcome = threeWayMerge({ tags: ['a', 'b'] }, { tags: ['a', 'b', 's'] }, { tags: ['t', 'a', 'b'] }, { winner: 'target' });
    expect(outcome).toEqual({ merged: { tags: ['t', 'a', 'b'] }, conflicts: [{ path: 'tags', base: ['a', 'b'], source: ['a', 'b', 's'], target: ['t', 'a', 'b'] }] });
    // An element without a key makes the whole array one value.
    const unkeyed = threeWayMerge({ t: [{ id: 'a' }] }, { t: [{ id: 'a' }, { x: 1 }] }, { t: [{ id: 'a', v: 1 }] }, { winner: 'source' });
    expect(unkeyed.conflicts.map((conflict) => conflict.path)).toEqual(['t']);
    // Duplicate ids likewise.
    const duplicate = threeWayMerge({ t: [{ id: 'a' }] }, { t: [{ id: 'a' }, { id: 'a' }] }, { t: [{ id: 'a', v: 1 }] }, { winner: 'source' });
    expect(duplicate.conflicts.map((conflict) => conflict.path)).toEqual(['t']);
  });

  it('a conflict at the root has the path ""', () => {
    expect(threeWayMerge(1, 2, 3, { winner: 'target' })).toEqual({ merged: 3, conflicts: [{ path: '', base: 1, source: 2, target: 3 }] });
    expect(threeWayMerge(1, 2, 3, { winner: 'target', resolutions: new Map([['', 'source']]) }).merged).toBe(2);
    expect(threeWayMerge(undefined, { a: 1 }, { a: 2 }, { winner: 'source' })).toEqual({
      merged: { a: 1 },
      conflicts: [{ path: 'a', base: undefined, source: 1, target: 2 }],
    });
  });

  it('does not change its inputs', () => {
    const base: Json = { tools: [{ id: 'a', d: 1 }], p: { q: 1 } };
    const source: Json = { tools: [{ id: 'a', d: 2 }, { id: 'b' }], p: { q: 2 } };
    const target: Json = { tools: [{ id: 'c' }, { id: 'a', d: 3 }], p: { q: 1, r: 1 } };
    const copies = structuredClone([base, source, target]);
    threeWayMerge(base, source, target, { winner: 'source' });
    expect([base, source, target]).toEqual(copies);
  });

  // Bug: the reordering is a change on the source side only (diffValues reports it as a change of
  // `tools`), the target changed something else, no conflict is reported, and the reordering is
  // silently lost: keyed arrays always follow the target's order.
  it('a reordering made on the source only survives when the target edits an element', () => {
    const base = { tools: [{ id: 'weather', description: 'w' }, { id: 'crm', description: 'c' }] };
    const source = { tools: [{ id: 'crm', description: 'c' }, { id: 'weather', description: 'w' }] };
    const target = { tools: [{ id: 'weather', description: 'w' }, { id: 'crm', description: 'c2' }] };
    expect(diffValues(base, source)).toEqual([{ path: 'tools', before: base.tools, after: source.tools }]);
    const outcome = threeWayMerge(base, source, target, { winner: 'target' });
    expect(outcome.conflicts).toEqual([]);
    expect(outcome.merged).toEqual({ tools: [{ id: 'crm', description: 'c2' }, { id: 'weather', description: 'w' }] });
  });

  it('a reordering made on the target only is kept, without a conflict, when the source edits an element', () => {
    const base = { tools: [{ id: 'weather', description: 'w' }, { id: 'crm', description: 'c' }] };
    const source = { tools: [{ id: 'weather', description: 'w' }, { id: 'crm', description: 'c2' }] };
    const target = { tools: [{ id: 'crm', description: 'c' }, { id: 'weather', description: 'w' }] };
    for (const winner of ['source', 'target'] as const) {
      expect(threeWayMerge(base, source, target, { winner })).toEqual({
        merged: { tools: [{ id: 'crm', description: 'c2' }, { id: 'weather', description: 'w' }] },
        conflicts: [],
      });
    }
  });

  it('both sides reordering a keyed array differently conflict at the array; the winner’s order is kept with both sides’ element edits', () => {
    const tool = (id: string, d: number) => ({ id, d });
    const base = { tools: [tool('a', 0), tool('b', 0), tool('c', 0)] };
    // Each side reorders, and edits an element the other did not.
    const source = { tools: [tool('c', 0), tool('a', 0), tool('b', 1)] };
    const target = { tools: [tool('b', 0), tool('c', 0), tool('a', 2)] };
    const orderConflict = { path: 'tools', base: base.tools, source: source.tools, target: target.tools };
    expect(threeWayMerge(base, source, target, { winner: 'target' })).toEqual({
      merged: { tools: [tool('b', 1), tool('c', 0), tool('a', 2)] },
      conflicts: [orderConflict],
    });
    expect(threeWayMerge(base, source, target, { winner: 'source' })).toEqual({
      merged: { tools: [tool('c', 0), tool('a', 2), tool('b', 1)] },
      conflicts: [orderConflict],
    });
    // A resolution of the array's path settles it like any other conflict.
    expect(threeWayMerge(base, source, target, { winner: 'target', resolutions: new Map([['tools', 'source']]) }).merged).toEqual({
      tools: [tool('c', 0), tool('a', 2), tool('b', 1)],
    });
    const chosen = [tool('a', 9), tool('b', 9)];
    expect(threeWayMerge(base, source, target, { winner: 'target', resolutions: new Map([['tools', { value: chosen }]]) })).toEqual({
      merged: { tools: chosen },
      conflicts: [orderConflict],
    });
  });

  it('a value typed by hand for an order conflict is the result as given, whatever its type', () => {
    const tool = (id: string) => ({ id });
    const base = { tools: [tool('a'), tool('b'), tool('c')] };
    const source = { tools: [tool('c'), tool('a'), tool('b')] };
    const target = { tools: [tool('b'), tool('c'), tool('a')] };
    for (const value of [null, { none: true }, 'none', 0] as Json[]) {
      expect(threeWayMerge(base, source, target, { winner: 'target', resolutions: new Map([['tools', { value }]]) }).merged).toEqual({ tools: value });
    }
  });

  it('an array or a string in the base of two objects is no base for their members', () => {
    expect(threeWayMerge(['x'], { a: 1 }, { 0: 'y' }, { winner: 'source' })).toEqual({ merged: { 0: 'y', a: 1 }, conflicts: [] });
  });

  it('merged members and conflicts come in key order, whatever order either side holds its keys in', () => {
    const outcome = threeWayMerge({ a: 0, b: 0 }, { a: 1, b: 1 }, { b: 2, a: 2 }, { winner: 'target' });
    expect(outcome.conflicts.map((conflict) => conflict.path)).toEqual(['a', 'b']);
    expect(Object.keys(outcome.merged as JsonObject)).toEqual(['a', 'b']);
  });

  it('a keyed array both sides add where the base has none merges element by element', () => {
    expect(threeWayMerge({}, { t: [{ id: 'a' }] }, { t: [{ id: 'b' }] }, { winner: 'target' })).toEqual({
      merged: { t: [{ id: 'a' }, { id: 'b' }] },
      conflicts: [],
    });
  });

  it('the same element added by both sides at different places is no reordering', () => {
    const base = { t: [{ id: 'a' }, { id: 'b' }] };
    const outcome = threeWayMerge(base, { t: [{ id: 'a' }, { id: 'b' }, { id: 'x' }] }, { t: [{ id: 'x' }, { id: 'a' }, { id: 'b' }] }, { winner: 'source' });
    expect(outcome.conflicts).toEqual([]);
  });

  it('new elements added one after another on the source stay together, in their order', () => {
    const outcome = threeWayMerge(
      { t: [{ id: 'a' }, { id: 'b' }] },
      { t: [{ id: 'a' }, { id: 'x' }, { id: 'y' }, { id: 'b' }] },
      { t: [{ id: 'a' }, { id: 'b', v: 1 }] },
      { winner: 'target' },
    );
    expect(outcome).toEqual({ merged: { t: [{ id: 'a' }, { id: 'x' }, { id: 'y' }, { id: 'b', v: 1 }] }, conflicts: [] });
  });

  it('an element deleted on one side and edited on the other goes back after the nearest element before it in the base', () => {
    const base = { t: [{ id: 'a' }, { id: 'b' }, { id: 'c' }, { id: 'd' }] };
    // The source edits c and moves it last; the target deletes it. The source wins the conflict.
    const source: Json = { t: [{ id: 'a' }, { id: 'b' }, { id: 'd' }, { id: 'c', v: 1 }] };
    const target = { t: [{ id: 'a' }, { id: 'b' }, { id: 'd' }] };
    expect(threeWayMerge(base, source, target, { winner: 'source' })).toEqual({
      merged: { t: [{ id: 'a' }, { id: 'b' }, { id: 'c', v: 1 }, { id: 'd' }] },
      conflicts: [{ path: 't[id=c]', base: { id: 'c' }, source: { id: 'c', v: 1 }, target: undefined }],
    });
  });

  it('keys by a numeric `id` as by a string one', () => {
    const base = { t: [{ id: 1, v: 0, w: 0 }, { id: 2, v: 0, w: 0 }] };
    const source = { t: [{ id: 1, v: 1, w: 1 }, { id: 2, v: 0, w: 0 }] };
    const target = { t: [{ id: 1, v: 2, w: 0 }, { id: 2, v: 2, w: 0 }] };
    expect(threeWayMerge(base, source, target, { winner: 'target' })).toEqual({
      merged: { t: [{ id: 1, v: 2, w: 1 }, { id: 2, v: 2, w: 0 }] },
      conflicts: [{ path: 't[id=1].v', base: 0, source: 1, target: 2 }],
    });
  });
});

describe('threeWayMerge: properties', () => {
  it('matches elements with both a unique `id` and a unique `name` (knowledge-base entries) by `id`: renamed on one side, edited on the other, no conflict', () => {
    const entry = (i: number) => ({ type: 'file', id: `doc_${i}`, name: `Document ${i}`, usage_mode: 'auto' });
    const plan = fc.integer({ min: 1, max: 5 }).chain((size) =>
      fc.record({
        size: fc.constant(size),
        // Each entry's new name: another entry's old name (names swapped) or a new one; names stay unique.
        names: fc.shuffledSubarray([...Array(size).keys()], { minLength: size, maxLength: size }),
        fresh: fc.array(fc.boolean(), { minLength: size, maxLength: size }),
        renamed: fc.array(fc.boolean(), { minLength: size, maxLength: size }),
        edited: fc.array(fc.boolean(), { minLength: size, maxLength: size }),
        renamingSide: fc.constantFrom<Side>('source', 'target'),
        winner: fc.constantFrom<Side>('source', 'target'),
      }),
    );
    fc.assert(
      fc.property(plan, ({ size, names, fresh, renamed, edited, renamingSide, winner }) => {
        const base = Array.from({ length: size }, (_, i) => entry(i));
        const nameOf = (i: number) => (renamed[i] ? `Document ${names[i]}${fresh[i] ? ' (new)' : ''}` : `Document ${i}`);
        const renames = { knowledge_base: base.map((element, i) => ({ ...element, name: nameOf(i) })) };
        const edits = { knowledge_base: base.map((element, i) => (edited[i] ? { ...element, usage_mode: 'prompt' } : element)) };
        const [source, target] = renamingSide === 'source' ? [renames, edits] : [edits, renames];
        const outcome = threeWayMerge({ knowledge_base: base }, source, target, { winner });
        expect(outcome.conflicts).toEqual([]);
        expect(outcome.merged).toEqual({
          knowledge_base: base.map((element, i) => ({ ...element, name: nameOf(i), usage_mode: edited[i] ? 'prompt' : 'auto' })),
        });
      }),
      { numRuns: 200 },
    );
  });

  it('merging with itself or an ancestor changes nothing', () => {
    fc.assert(
      fc.property(fc.oneof(fc.tuple(jsonValue, jsonValue), anyTriple.map(([base, source]): [Json, Json] => [base, source])), winnerArb, ([x, y], winner) => {
        expect(threeWayMerge(x, x, y, { winner })).toEqual({ merged: y, conflicts: [] });
        expect(threeWayMerge(x, y, x, { winner })).toEqual({ merged: y, conflicts: [] });
        expect(threeWayMerge(x, x, x, { winner })).toEqual({ merged: x, conflicts: [] });
        expect(threeWayMerge(x, y, y, { winner })).toEqual({ merged: y, conflicts: [] });
      }),
      runs,
    );
  });

  it('changes on one side only, or the same on both, always survive and never conflict', () => {
    fc.assert(
      fc.property(scenarioArb(['source', 'target', 'both']), winnerArb, (scenario, winner) => {
        const outcome = threeWayMerge(scenario.base, scenario.source, scenario.target, { winner });
        expect(outcome.conflicts).toEqual([]);
        expect(normalized(outcome.merged)).toEqual(normalized(expectedMerge(scenario, () => ({ kind: 'delete' }))));
        // And at every edited location, the side's value exactly (not only up to order).
        for (const edit of scenario.edits) {
          const side = edit.who === 'target' ? scenario.target : scenario.source;
          expect(valueAtPath(outcome.merged, edit.location.segments)).toEqual(valueAtPath(side, edit.location.segments));
        }
      }),
      runs,
    );
  });

  it('no phantom conflicts: the two sides editing different keys of one object, or different elements of one keyed array', () => {
    // Edits only inside one object or one keyed array, split between the sides.
    const siblings = configLike.chain((base) => {
      const tools = (base.agent as JsonObject).prompt as JsonObject;
      const toolIds = (tools.tools as JsonObject[]).map((element) => element.id as string);
      return fc
        .tuple(
          fc.subarray([...toolIds, ...IDS.filter((id) => !toolIds.includes(id))], { minLength: 2 }),
          fc.subarray(['prompt', 'llm', ...KEYS], { minLength: 2 }),
          fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
          fc.array(smallValue, { minLength: 12, maxLength: 12 }),
        )
        .map(([ids, keys, sides, values]) => ({ base, ids, keys, sides, values }));
    });
    fc.assert(
      fc.property(siblings, winnerArb, ({ base, ids, keys, sides, values }, winner) => {
        let source: Json | undefined = base;
        let target: Json | undefined = base;
        let expected: Json | undefined = base;
        let n = 0;
        const edit = (segments: Segment[], value: Json | undefined) => {
          const toSource = sides[n++ % sides.length];
          if (toSource) source = withPath(source, segments, value);
          else target = withPath(target, segments, value);
          expected = withPath(expected, segments, value);
        };
        for (const [i, id] of ids.entries()) {
          const segments: Segment[] = [{ key: 'agent' }, { key: 'prompt' }, { key: 'tools' }, { field: 'id', id }];
          const existing = valueAtPath(base, segments) as JsonObject | undefined;
          if (existing === undefined) edit(segments, { id, description: values[i] });
          else if (i % 3 === 0) edit(segments, undefined);
          else edit([...segments, { key: 'description' }], changedLeaf(existing.description));
        }
        for (const [i, key] of keys.entries()) edit([{ key: 'agent' }, { key: 'prompt' }, { key }], values[(i + 6) % values.length]);
        const outcome = threeWayMerge(base, source as Json, target as Json, { winner });
        expect(outcome.conflicts).toEqual([]);
        expect(normalized(outcome.merged)).toEqual(normalized(expected));
      }),
      runs,
    );
  });

  it('different changes on both sides conflict exactly where they differ, and the winner or a resolution settles each', () => {
    fc.assert(
      fc.property(scenarioArb(['source', 'target', 'both', 'conflict']), winnerArb, (scenario, winner) => {
        const outcome = threeWayMerge(scenario.base, scenario.source, scenario.target, { winner });
        expect(byPath(outcome.conflicts)).toEqual(byPath(expectedConflicts(scenario)));
        const expected = expectedMerge(scenario, (edit) => (winner === 'source' ? edit.op : edit.targetOp));
        expect(normalized(outcome.merged)).toEqual(normalized(expected));
      }),
      runs,
    );
  });

  it('keyed arrays keep the target’s order and the order of the source’s new elements', () => {
    fc.assert(
      fc.property(scenarioArb(['source', 'target', 'both', 'conflict']), winnerArb, (scenario, winner) => {
        const { merged } = threeWayMerge(scenario.base, scenario.source, scenario.target, { winner });
        const baseArrays = keyedArrays(scenario.base);
        const sourceArrays = keyedArrays(scenario.source);
        const targetArrays = keyedArrays(scenario.target);
        for (const [path, ids] of keyedArrays(merged)) {
          const inMerged = new Set(ids);
          const targetIds = (targetArrays.get(path) ?? []).filter((id) => inMerged.has(id));
          expect(ids.filter((id) => targetIds.includes(id))).toEqual(targetIds);
          const old = new Set([...(baseArrays.get(path) ?? []), ...(targetArrays.get(path) ?? [])]);
          const sourceNew = (sourceArrays.get(path) ?? []).filter((id) => !old.has(id) && inMerged.has(id));
          expect(ids.filter((id) => sourceNew.includes(id))).toEqual(sourceNew);
        }
      }),
      runs,
    );
  });

  it('is symmetric: swapping the sides and the winner gives the same merge and the same conflicts', () => {
    fc.assert(
      fc.property(anyTriple, winnerArb, ([base, source, target], winner) => {
        const flipped: Side = winner === 'source' ? 'target' : 'source';
        const forward = threeWayMerge(base, source, target, { winner });
        const backward = threeWayMerge(base, target, source, { winner: flipped });
        // Up to the order of elements added to one keyed array by both sides (see the order test).
        expect(normalized(backward.merged)).toEqual(normalized(forward.merged));
        expect(byPath(backward.conflicts)).toEqual(
          byPath(forward.conflicts.map((conflict) => ({ ...conflict, source: conflict.target, target: conflict.source }))),
        );
      }),
      runs,
    );
  });

  it('every conflict is where base, source and target all differ, reported once with their values, and takes the winner’s', () => {
    fc.assert(
      fc.property(anyTriple, winnerArb, ([base, source, target], winner) => {
        const outcome = threeWayMerge(base, source, target, { winner });
        expect(new Set(paths(outcome.conflicts)).size).toBe(outcome.conflicts.length);
        for (const conflict of outcome.conflicts) {
          expect(same(conflict.base, conflict.source)).toBe(false);
          expect(same(conflict.base, conflict.target)).toBe(false);
          expect(same(conflict.source, conflict.target)).toBe(false);
          const segments = parsePath(conflict.path);
          expect(conflict.base).toEqual(valueAtPath(base, segments));
          expect(conflict.source).toEqual(valueAtPath(source, segments));
          expect(conflict.target).toEqual(valueAtPath(target, segments));
          expect(valueAtPath(outcome.merged, segments)).toEqual(winner === 'source' ? conflict.source : conflict.target);
          // Conflicts are never nested.
          for (const other of outcome.conflicts) if (other !== conflict) expect(isPrefix(segments, parsePath(other.path))).toBe(false);
        }
        // No conflict, no difference between the winners.
        const other = threeWayMerge(base, source, target, { winner: winner === 'source' ? 'target' : 'source' });
        if (outcome.conflicts.length === 0) expect(other.merged).toEqual(outcome.merged);
      }),
      runs,
    );
  });

  it('resolving every conflict to one side equals making that side the winner', () => {
    fc.assert(
      fc.property(anyTriple, winnerArb, ([base, source, target], side) => {
        const loser: Side = side === 'source' ? 'target' : 'source';
        const asWinner = threeWayMerge(base, source, target, { winner: side });
        const resolutions = new Map<string, Resolution>(asWinner.conflicts.map((conflict) => [conflict.path, side]));
        const resolved = threeWayMerge(base, source, target, { winner: loser, resolutions });
        expect(resolved).toEqual(asWinner);
      }),
      runs,
    );
  });

  it('a {value} resolution puts that value at its path and leaves the other conflicts to the winner', () => {
    const withConflict = scenarioArb(['source', 'target', 'both', 'conflict'])
      .filter((scenario) => scenario.edits.some((edit) => edit.who === 'conflict'))
      .chain((scenario) => fc.tuple(fc.constant(scenario), fc.constantFrom(...scenario.edits.filter((edit) => edit.who === 'conflict'))));
    fc.assert(
      fc.property(withConflict, winnerArb, ([scenario, chosen], winner) => {
        const path = formatPath(chosen.location.segments);
        const value: Json = chosen.location.kind === 'element' ? { id: elementOf(chosen.location), resolved: true } : { resolved: [1, 2] };
        const outcome: MergeOutcome = threeWayMerge(scenario.base, scenario.source, scenario.target, {
          winner,
          resolutions: new Map([[path, { value }]]),
        });
        expect(valueAtPath(outcome.merged, chosen.location.segments)).toEqual(value);
        const expected = expectedMerge(scenario, (edit) =>
          edit === chosen ? { kind: 'set', value } : winner === 'source' ? edit.op : edit.targetOp,
        );
        expect(normalized(outcome.merged)).toEqual(normalized(expected));
        // The conflict is still reported: a resolution settles it, it does not hide it.
        expect(paths(outcome.conflicts)).toContain(path);
      }),
      runs,
    );
  });
});

/** Applies a diff, change by change, to `before`. */
function applyChanges(before: Json, changes: ReturnType<typeof diffValues>): Json | undefined {
  let doc: Json | undefined = before;
  for (const change of changes) doc = withPath(doc, parsePath(change.path), change.after);
  return doc;
}

const anyPair: fc.Arbitrary<[Json, Json]> = fc.oneof(
  scenarioArb(['source']).map((s): [Json, Json] => [s.base, s.source]),
  fc.tuple(tinyJson, tinyJson),
  fc.tuple(smallValue, smallValue),
);

describe('diffValues', () => {
  it('finds nothing between a value and itself', () => {
    fc.assert(
      fc.property(jsonValue, (value) => {
        expect(diffValues(value, value)).toEqual([]);
        expect(diffValues(value, structuredClone(value))).toEqual([]);
      }),
      runs,
    );
    expect(diffValues(undefined, undefined)).toEqual([]);
  });

  it('reports changes that differ, at distinct, non-nested paths, with the values found there', () => {
    fc.assert(
      fc.property(anyPair, ([before, after]) => {
        const changes = diffValues(before, after);
        expect(changes.length === 0).toBe(deepEqual(before, after));
        for (const change of changes) {
          expect(same(change.before, change.after)).toBe(false);
          const segments = parsePath(change.path);
          expect(change.before).toEqual(valueAtPath(before, segments));
          expect(change.after).toEqual(valueAtPath(after, segments));
          for (const other of changes) if (other !== change) expect(isPrefix(segments, parsePath(other.path))).toBe(false);
        }
      }),
      runs,
    );
  });

  it('applying the diff to the old value gives the new one (up to the order of keyed elements)', () => {
    fc.assert(
      fc.property(anyPair, ([before, after]) => {
        expect(normalized(applyChanges(before, diffValues(before, after)))).toEqual(normalized(after));
      }),
      runs,
    );
  });

  it('an edit of one leaf deep inside is exactly one change at its path', () => {
    const leafEdit = configLike.chain((base) => {
      const leaves = locations(base).filter((location) => location.kind === 'member' && !Array.isArray(location.current) && !isJsonObject(location.current));
      return fc.tuple(fc.constant(base), fc.constantFrom(...leaves));
    });
    fc.assert(
      fc.property(leafEdit, ([base, location]) => {
        const replacement = changedLeaf(location.current as Json);
        const after = withPath(base, location.segments, replacement);
        expect(diffValues(base, after)).toEqual([{ path: formatPath(location.segments), before: location.current, after: replacement }]);
      }),
      runs,
    );
  });

  it('diffs keyed arrays element by element', () => {
    const toolEdit = configLike.chain((base) => {
      const tools = ((base.agent as JsonObject).prompt as JsonObject).tools as JsonObject[];
      return fc.tuple(fc.constant(base), fc.constantFrom(...tools.map((element) => element.id as string)), fc.constantFrom(...IDS));
    });
    fc.assert(
      fc.property(toolEdit, ([base, id, newId]) => {
        const toolPath: Segment[] = [{ key: 'agent' }, { key: 'prompt' }, { key: 'tools' }, { field: 'id', id }];
        const description = valueAtPath(base, [...toolPath, { key: 'description' }]) as Json;
        const edited = withPath(base, [...toolPath, { key: 'description' }], changedLeaf(description)) as Json;
        expect(diffValues(base, edited)).toEqual([
          { path: `agent.prompt.tools[id=${id}].description`, before: description, after: changedLeaf(description) },
        ]);
        const removed = withPath(base, toolPath, undefined) as Json;
        expect(diffValues(base, removed)).toEqual([{ path: `agent.prompt.tools[id=${id}]`, before: valueAtPath(base, toolPath), after: undefined }]);
        const addPath: Segment[] = [{ key: 'agent' }, { key: 'prompt' }, { key: 'tools' }, { field: 'id', id: newId }];
        if (valueAtPath(base, addPath) === undefined) {
          const added = withPath(base, addPath, { id: newId }, 0) as Json;
          expect(diffValues(base, added)).toEqual([{ path: `agent.prompt.tools[id=${newId}]`, before: undefined, after: { id: newId } }]);
        }
      }),
      runs,
    );
  });

  it('reports a pure reordering of a keyed array as a change of the array', () => {
    const before = { tools: [{ id: 'a' }, { id: 'b' }] };
    const after = { tools: [{ id: 'b' }, { id: 'a' }] };
    expect(diffValues(before, after)).toEqual([{ path: 'tools', before: before.tools, after: after.tools }]);
  });

  it('reports a reordering with an element edit as one change of the array', () => {
    const before = [{ id: 'a', v: 0 }, { id: 'b', v: 0 }];
    const after = [{ id: 'b', v: 0 }, { id: 'a', v: 1 }];
    expect(diffValues({ t: before }, { t: after })).toEqual([{ path: 't', before, after }]);
  });

  it('tells an absent key from null', () => {
    expect(diffValues({ a: null }, {})).toEqual([{ path: 'a', before: null, after: undefined }]);
    expect(diffValues({}, { a: null })).toEqual([{ path: 'a', before: undefined, after: null }]);
  });
});

describe('key order', () => {
  // A document read back from storage has its keys sorted; one just committed keeps its sender's
  // order. Conflicts and changes are lists: they must come out in the same order either way (a merge
  // preview answered from a warm cache and after a restart must agree).
  it('conflicts, the merged document and diffs do not depend on the order objects hold their keys in', () => {
    fc.assert(
      fc.property(jsonValue, jsonValue, jsonValue, fc.constantFrom<Side>('source', 'target'), (base, source, target, winner) => {
        const reversed = threeWayMerge(withKeysReversed(base), withKeysReversed(source), withKeysReversed(target), { winner, resolutions: new Map() });
        const plain = threeWayMerge(base, source, target, { winner, resolutions: new Map() });
        expect(reversed.conflicts).toEqual(plain.conflicts);
        expect(deepEqual(reversed.merged as Json, plain.merged as Json)).toBe(true);
        expect(diffValues(withKeysReversed(base), withKeysReversed(source))).toEqual(diffValues(base, source));
      }),
    );
  });
});
