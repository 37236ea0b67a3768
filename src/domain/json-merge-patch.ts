import { type Json, type JsonObject, isJsonObject } from './canonical-json.js';

/**
 * RFC 7386 JSON Merge Patch: objects merge recursively, arrays and scalars replace, `null`
 * removes the key. Returns a new value; neither input is modified.
 */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const result: JsonObject = isJsonObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key], value);
  }
  return result;
}
