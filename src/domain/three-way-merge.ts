import { deepEqual, type Json, type JsonObject, isJsonObject, setMember } from './canonical-json.js';

/**
 * Three-way merge and diff of agent configs (decisions.md D9, D10). Pure: no I/O.
 *
 * Objects merge key by key. Arrays whose elements are all objects with a unique `id` (else
 * `tool_id`, else `name`) merge element by element by that key; other arrays are one value. A path
 * changed on one side only takes that side; changed identically on both is no conflict; changed
 * differently on both is a conflict, settled by a resolution for its path, else by the winner.
 *
 * Paths are relative to their section: `agent.prompt.tools[id=weather].description`.
 */

/** "Not present": distinct from JSON null. */
const ABSENT = Symbol('absent');
type Value = Json | typeof ABSENT;

export type Side = 'source' | 'target';
export type Resolution = Side | { value: Json };

export interface Conflict {
  path: string;
  base: Json | undefined;
  source: Json | undefined;
  target: Json | undefined;
}

export interface MergeOptions {
  /** Who takes a conflict without a resolution. */
  winner: Side;
  /** Path → resolution, paths as `Conflict.path`. */
  resolutions?: ReadonlyMap<string, Resolution>;
}

export interface MergeOutcome {
  merged: Json | undefined;
  conflicts: Conflict[];
}

export interface Change {
  path: string;
  before: Json | undefined;
  after: Json | undefined;
}

const KEY_FIELDS = ['id', 'tool_id', 'name'] as const;

function fromValue(value: Value): Json | undefined {
  return value === ABSENT ? undefined : value;
}

function toValue(value: Json | undefined): Value {
  return value === undefined ? ABSENT : value;
}

function same(a: Value, b: Value): boolean {
  if (a === ABSENT || b === ABSENT) return a === b;
  return deepEqual(a, b);
}

function joinKey(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** The key field that identifies every element of all these arrays, if one does. */
function keyFieldOf(arrays: Json[][]): (typeof KEY_FIELDS)[number] | undefined {
  const elements = arrays.flat();
  if (elements.length === 0 || !elements.every(isJsonObject)) return undefined;
  for (const field of KEY_FIELDS) {
    const keyed = arrays.every((array) => {
      const keys = array.map((element) => (element as JsonObject)[field]);
      if (!keys.every((key) => typeof key === 'string' || typeof key === 'number')) return false;
      return new Set(keys.map(String)).size === keys.length;
    });
    if (keyed) return field;
  }
  return undefined;
}

function elementPath(path: string, field: string, key: string): string {
  return `${path}[${field}=${key}]`;
}

function asArray(value: Value): Json[] | undefined {
  return Array.isArray(value) ? value : undefined;
}

function byKey(array: Json[], field: string): Map<string, Json> {
  return new Map(array.map((element) => [String((element as JsonObject)[field]), element]));
}

export function threeWayMerge(base: Json | undefined, source: Json | undefined, target: Json | undefined, options: MergeOptions): MergeOutcome {
  const conflicts: Conflict[] = [];
  const merged = mergeValues(toValue(base), toValue(source), toValue(target), '', options, conflicts);
  return { merged: fromValue(merged), conflicts };
}

function mergeValues(base: Value, source: Value, target: Value, path: string, options: MergeOptions, conflicts: Conflict[]): Value {
  if (same(source, target)) return source;
  if (same(base, source)) return target;
  if (same(base, target)) return source;

  if (source !== ABSENT && target !== ABSENT && isJsonObject(source) && isJsonObject(target)) {
    const baseObject = base !== ABSENT && isJsonObject(base) ? base : {};
    const result: JsonObject = {};
    // In key order, not in the order either object happens to hold its keys (a document read back
    // from storage has sorted keys, one just committed its sender's order): conflicts come out the same.
    const keys = [...new Set([...Object.keys(target), ...Object.keys(source), ...Object.keys(baseObject)])].sort();
    for (const key of keys) {
      const value = mergeValues(
        Object.hasOwn(baseObject, key) ? baseObject[key] : ABSENT,
        Object.hasOwn(source, key) ? source[key] : ABSENT,
        Object.hasOwn(target, key) ? target[key] : ABSENT,
        joinKey(path, key),
        options,
        conflicts,
      );
      if (value !== ABSENT) setMember(result, key, value);
    }
    return result;
  }

  const sourceArray = asArray(source);
  const targetArray = asArray(target);
  if (sourceArray && targetArray) {
    const baseArray = asArray(base) ?? [];
    const field = keyFieldOf([baseArray, sourceArray, targetArray]);
    if (field) return mergeKeyedArrays(baseArray, sourceArray, targetArray, field, path, options, conflicts);
  }

  return conflict(base, source, target, path, options, conflicts);
}

/**
 * Element by element. The order of the elements both sides kept is itself merged three-way: a
 * reordering on one side only is kept; different reorderings on both sides are a conflict at the
 * array's path (settled like any other). New elements go after the element they followed on
 * their side.
 */
function mergeKeyedArrays(
  base: Json[],
  source: Json[],
  target: Json[],
  field: string,
  path: string,
  options: MergeOptions,
  conflicts: Conflict[],
): Value {
  const keyOf = (element: Json) => String((element as JsonObject)[field]);
  const baseByKey = byKey(base, field);
  const sourceByKey = byKey(source, field);
  const targetByKey = byKey(target, field);
  const common = (array: Json[]) => array.map(keyOf).filter((key) => baseByKey.has(key) && sourceByKey.has(key) && targetByKey.has(key));
  const [baseOrder, sourceOrder, targetOrder] = [common(base), common(source), common(target)];
  const sameOrder = (a: string[], b: string[]) => a.length === b.length && a.every((key, i) => key === b[i]);

  let primary: Json[] = target;
  let secondary: Json[] = source;
  if (sameOrder(targetOrder, baseOrder) && !sameOrder(sourceOrder, baseOrder)) {
    primary = source;
    secondary = target;
  } else if (!sameOrder(sourceOrder, baseOrder) && !sameOrder(targetOrder, baseOrder) && !sameOrder(sourceOrder, targetOrder)) {
    // Both reordered, differently: the order is a conflict of the whole array.
    const chosen = conflict(base, source, target, path, options, conflicts);
    // A value typed by hand is the result as given, whatever its type (as for any other conflict).
    if (chosen !== source && chosen !== target) return chosen;
    if (chosen === source) {
      primary = source;
      secondary = target;
    }
  }

  const order: string[] = primary.map(keyOf);
  let insertAt = 0;
  for (const element of secondary) {
    const key = keyOf(element);
    const existing = order.indexOf(key);
    if (existing >= 0) {
      insertAt = existing + 1;
    } else if (!baseByKey.has(key)) {
      order.splice(insertAt, 0, key);
      insertAt++;
    }
  }
  // An element one side deleted and the other changed: back where it stood in the base.
  base.forEach((element, index) => {
    const key = keyOf(element);
    if (order.includes(key)) return;
    const before = base.slice(0, index).map(keyOf).reverse().find((earlier) => order.includes(earlier));
    order.splice(before === undefined ? 0 : order.indexOf(before) + 1, 0, key);
  });

  const result: Json[] = [];
  for (const key of order) {
    const value = mergeValues(
      toValue(baseByKey.get(key)),
      toValue(sourceByKey.get(key)),
      toValue(targetByKey.get(key)),
      elementPath(path, field, key),
      options,
      conflicts,
    );
    if (value !== ABSENT) result.push(value);
  }
  return result;
}

function conflict(base: Value, source: Value, target: Value, path: string, options: MergeOptions, conflicts: Conflict[]): Value {
  conflicts.push({ path, base: fromValue(base), source: fromValue(source), target: fromValue(target) });
  const resolution = options.resolutions?.get(path) ?? options.winner;
  if (resolution === 'source') return source;
  if (resolution === 'target') return target;
  return resolution.value;
}

/**
 * What changed from `before` to `after`, path by path, with the same path rules as the merge
 * (keyed arrays element by element). Each change is the smallest path where the two differ.
 */
export function diffValues(before: Json | undefined, after: Json | undefined): Change[] {
  const changes: Change[] = [];
  diffInto(toValue(before), toValue(after), '', changes);
  return changes;
}

function diffInto(before: Value, after: Value, path: string, changes: Change[]): void {
  if (same(before, after)) return;
  if (before !== ABSENT && after !== ABSENT && isJsonObject(before) && isJsonObject(after)) {
    // In key order, like the merge: the same changes whichever order the objects hold their keys in.
    for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
      diffInto(Object.hasOwn(before, key) ? before[key] : ABSENT, Object.hasOwn(after, key) ? after[key] : ABSENT, joinKey(path, key), changes);
    }
    return;
  }
  const beforeArray = asArray(before);
  const afterArray = asArray(after);
  if (beforeArray && afterArray) {
    const field = keyFieldOf([beforeArray, afterArray]);
    if (field) {
      const beforeByKey = byKey(beforeArray, field);
      const afterByKey = byKey(afterArray, field);
      const found = changes.length;
      for (const key of new Set([...beforeByKey.keys(), ...afterByKey.keys()])) {
        diffInto(toValue(beforeByKey.get(key)), toValue(afterByKey.get(key)), elementPath(path, field, key), changes);
      }
      // A reordering of the elements both keep is a change of the array itself, reported as one
      // change at the array's path (not beside its elements' changes: paths never nest).
      const kept = (array: Json[], other: Map<string, Json>) =>
        array.map((element) => String((element as JsonObject)[field])).filter((key) => other.has(key));
      const reordered = kept(beforeArray, afterByKey).join('\u0000') !== kept(afterArray, beforeByKey).join('\u0000');
      if (reordered || changes.length === found) {
        changes.splice(found);
        changes.push({ path, before: beforeArray, after: afterArray });
      }
      return;
    }
  }
  changes.push({ path, before: fromValue(before), after: fromValue(after) });
}
