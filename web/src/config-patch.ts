// The editable config and the JSON Merge Patch (RFC 7386, what PATCH agent takes for
// conversation_config and platform_settings) between two configs. Pure, without imports, so that
// the server's test run (test/units/config-patch.test.ts) checks it too.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** What the editor edits: the parts of an agent a commit or a draft carries. */
export interface EditableConfig {
  name: string;
  tags: string[];
  conversation_config: JsonObject;
  platform_settings: JsonObject;
  workflow: JsonObject;
}

export const isObject = (value: Json | undefined): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value);

export function sameJson(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, index) => sameJson(item, b[index]));
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((key) => sameJson(a[key], b[key]));
  }
  return false;
}

/** The merge patch that turns `from` into `to` (undefined when they are the same); a removed key is null. */
export function mergePatchBetween(from: Json | undefined, to: Json): Json | undefined {
  if (!isObject(from) || !isObject(to)) return sameJson(from, to) ? undefined : to;
  const patch: JsonObject = {};
  for (const key of Object.keys(to)) {
    const inner = mergePatchBetween(from[key], to[key]);
    if (inner !== undefined) patch[key] = inner;
  }
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  return Object.keys(patch).length > 0 ? patch : undefined;
}

/** `patch` applied to `target` (RFC 7386). */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}

/**
 * The PATCH body that turns `base` into `edited`: merge patches for the config sections, the whole
 * workflow (PATCH replaces it), name and tags when they changed. Empty when nothing changed.
 */
export function commitBody(base: EditableConfig, edited: EditableConfig): Partial<Record<keyof EditableConfig, Json>> {
  const body: Partial<Record<keyof EditableConfig, Json>> = {};
  for (const section of ['conversation_config', 'platform_settings'] as const) {
    const patch = mergePatchBetween(base[section], edited[section]);
    if (patch !== undefined) body[section] = patch;
  }
  if (!sameJson(base.workflow, edited.workflow)) body.workflow = edited.workflow;
  if (base.name !== edited.name) body.name = edited.name;
  if (!sameJson(base.tags, edited.tags)) body.tags = edited.tags;
  return body;
}

/** `edited`'s changes from `base`, applied on `head`: re-applying one's edit on top of another's commit. */
export function reapply(base: EditableConfig, edited: EditableConfig, head: EditableConfig): EditableConfig {
  const body = commitBody(base, edited);
  return {
    name: body.name !== undefined ? edited.name : head.name,
    tags: body.tags !== undefined ? edited.tags : head.tags,
    conversation_config: applyMergePatch(head.conversation_config, body.conversation_config ?? {}) as JsonObject,
    platform_settings: applyMergePatch(head.platform_settings, body.platform_settings ?? {}) as JsonObject,
    workflow: body.workflow !== undefined ? edited.workflow : head.workflow,
  };
}

/**
 * What changes from `before` to `after`, leaf by leaf (objects walked, arrays compared whole), as
 * dotted paths: the changes a preview would make to a head, computed where both configs are at hand.
 */
export function configChanges(before: Json | undefined, after: Json | undefined, prefix: string[] = []): { path: string; before: Json | undefined; after: Json | undefined }[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((key) => configChanges(before[key], after[key], [...prefix, key]));
  }
  if (sameJson(before, after) || (before === undefined && after === null) || (before === null && after === undefined)) return [];
  return [{ path: prefix.join('.'), before, after }];
}
