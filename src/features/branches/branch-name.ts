import { RequestValidationError } from '../../http/errors.js';

export const MAX_BRANCH_NAME_LENGTH = 140;

// Upstream: "letters, numbers and () [] {} - / ." (versioning docs). Spaces are allowed too, and
// combining marks, without which names in Hindi or Thai (or a decomposed "café") cannot be written.
const ALLOWED = /^[\p{L}\p{M}\p{N}()[\]{}\-/. ]+$/u;

/** Returns the name if it is a valid branch name, else a 422 at `loc`. */
export function validateBranchName(name: string, loc: (string | number)[]): string {
  if (name.trim().length === 0) throw RequestValidationError.at(loc, 'Branch name must not be empty', 'string_too_short');
  if ([...name].length > MAX_BRANCH_NAME_LENGTH) {
    throw RequestValidationError.at(loc, `String should have at most ${MAX_BRANCH_NAME_LENGTH} characters`, 'string_too_long');
  }
  if (!ALLOWED.test(name)) {
    throw RequestValidationError.at(
      loc,
      'Branch names may contain only letters, digits, spaces and the characters ( ) [ ] { } - / .',
      'string_pattern_mismatch',
    );
  }
  return name;
}
