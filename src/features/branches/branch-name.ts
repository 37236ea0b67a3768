import { RequestValidationError } from '../../errors.js';

export const MAX_BRANCH_NAME_LENGTH = 140;

// Upstream: "letters, numbers and () [] {} - / ." (versioning docs). Spaces are allowed too, and
// combining marks, without which names in Hindi or Thai (or a decomposed "café") cannot be written.
const ALLOWED = /^[\p{L}\p{M}\p{N}()[\]{}\-/. ]+$/u;
/** Characters that render as nothing (U+034F, U+200B, U+FEFF, variation selectors, Hangul fillers…). */
const INVISIBLE = /\p{Default_Ignorable_Code_Point}/u;
const INVISIBLE_ALL = /\p{Default_Ignorable_Code_Point}/gu;
/** A combining mark with nothing to combine with: at the start, or after a space or punctuation. */
const DETACHED_MARK = /(?:^|[^\p{L}\p{N}\p{M}])\p{M}/u;

/**
 * The name to store for `name`, or a 422 at `loc`. Names are stored in NFC without leading or
 * trailing spaces, so that what looks the same is spelled the same; characters that render as
 * nothing and combining marks that attach to nothing are refused, since they would make look-alikes.
 */
export function validateBranchName(name: string, loc: (string | number)[]): string {
  if (name.trim().length === 0) throw RequestValidationError.at(loc, 'Branch name must not be empty', 'string_too_short');
  const normalized = name.normalize('NFC').replace(/^ +| +$/g, '');
  if ([...normalized].length > MAX_BRANCH_NAME_LENGTH) {
    throw RequestValidationError.at(loc, `String should have at most ${MAX_BRANCH_NAME_LENGTH} characters`, 'string_too_long');
  }
  if (!ALLOWED.test(normalized)) {
    throw RequestValidationError.at(
      loc,
      'Branch names may contain only letters, digits, spaces and the characters ( ) [ ] { } - / .',
      'string_pattern_mismatch',
    );
  }
  if (INVISIBLE.test(normalized)) {
    throw RequestValidationError.at(
      loc,
      'Branch names may not contain invisible characters (such as U+034F, U+200B, U+FEFF or variation selectors)',
      'string_pattern_mismatch',
    );
  }
  if (DETACHED_MARK.test(normalized)) {
    throw RequestValidationError.at(loc, 'A combining mark in a branch name must follow a letter or a digit', 'string_pattern_mismatch');
  }
  return normalized;
}

/**
 * What two branch names of one agent must not share (a unique key in the database): the name
 * case-folded under NFKC, without invisible characters, with runs of spaces as one. "Main", "main",
 * "ｍａｉｎ", "MAIN " and "Ma\u034Fin" all have the key "main". Upper- then lower-casing folds
 * what lower-casing alone leaves apart ("ß" and "ss", "ς" and "σ").
 */
export function branchNameKey(name: string): string {
  return name
    .normalize('NFKC')
    .replace(INVISIBLE_ALL, '')
    .toUpperCase()
    .toLowerCase()
    .normalize('NFKC')
    .replace(/\s+/gu, ' ')
    .trim();
}
