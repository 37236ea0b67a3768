import { type Json, type JsonObject, isJsonObject, setMember } from './canonical-json.js';

/**
 * RFC 7386 JSON Merge Patch: objects merge recursively, arrays and scalars replace, `null`
 * removes the key. Returns a new value; neither input is modified.
 */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return patch;
  const result: JsonObject = {};
  if (isJsonObject(target)) for (const [key, value] of Object.entries(target)) setMember(result, key, value);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else setMember(result, key, applyMergePatch(Object.hasOwn(result, key) ? result[key] : undefined, value));
  }
  return result;
}
