import { type EditableConfig, isObject, type Json } from '../config-patch';

// The editor's model: the fields of the form as paths into the config (the patches between configs
// are in ../config-patch.ts).

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

