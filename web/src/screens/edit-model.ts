import type { EditableConfig, Json, JsonObject } from '../api/edit';

// The editor's model: the fields of the form as paths into the config, and the JSON Merge Patch
// (RFC 7386, what PATCH agent takes for conversation_config and platform_settings) between two configs.

export interface FormField {
  /** The path in the editable config (as the server's 422 `loc`, without the leading "body"). */
  path: string[];
  label: string;
  kind: 'text' | 'long' | 'number';
  hint?: string;
}

export const FORM_FIELDS: FormField[] = [
  { path: ['conversation_config', 'agent', 'first_message'], label: 'First message', kind: 'long', hint: 'What the agent says first. Empty: it waits for the user.' },
  { path: ['conversation_config', 'agent', 'prompt', 'prompt'], label: 'System prompt', kind: 'long' },
  { path: ['conversation_config', 'agent', 'prompt', 'llm'], label: 'LLM', kind: 'text', hint: 'e.g. gemini-2.0-flash, gpt-4o-mini' },
  { path: ['conversation_config', 'agent', 'prompt', 'temperature'], label: 'Temperature', kind: 'number', hint: '0 to 1' },
  { path: ['conversation_config', 'tts', 'voice_id'], label: 'Voice id', kind: 'text' },
  { path: ['conversation_config', 'agent', 'language'], label: 'Language', kind: 'text', hint: 'e.g. en, de, pt-br' },
];

export const fieldId = (path: (string | number)[]) => `field-${path.join('-')}`;

export function valueAt(value: Json | undefined, path: (string | number)[]): Json | undefined {
  let here: Json | undefined = value;
  for (const key of path) {
    if (here === null || typeof here !== 'object') return undefined;
    here = (here as Record<string, Json>)[key as string];
  }
  return here;
}

/** A copy of `config` with `path` set to `value` (objects on the way created as needed). */
export function withValueAt(config: EditableConfig, path: string[], value: Json): EditableConfig {
  const set = (node: Json | undefined, index: number): Json => {
    if (index === path.length) return value;
    const object = node !== null && typeof node === 'object' && !Array.isArray(node) ? node : {};
    return { ...object, [path[index]]: set(object[path[index]], index + 1) };
  };
  return set(config as unknown as Json, 0) as unknown as EditableConfig;
}

const isObject = (value: Json | undefined): value is JsonObject => value !== null && typeof value === 'object' && !Array.isArray(value);

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

/** The dotted paths (`conversation_config.agent.first_message`) a patch body touches. */
export function patchedPaths(body: Json | undefined, prefix: string[] = []): string[] {
  if (!isObject(body) || (prefix.length > 0 && prefix[0] === 'workflow')) return prefix.length > 0 ? [prefix.join('.')] : [];
  return Object.entries(body).flatMap(([key, value]) => patchedPaths(value, [...prefix, key]));
}

/** A value for display: strings as they are, anything else as JSON. */
export function shown(value: Json | undefined): string {
  if (value === undefined) return '(not set)';
  if (typeof value === 'string') return value;
  return JSON.stringify(value, null, 2);
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
