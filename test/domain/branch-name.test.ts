import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_BRANCH_NAME_LENGTH, validateBranchName } from '../../src/features/branches/branch-name.js';
import { RequestValidationError } from '../../src/http/errors.js';

const LOC = ['body', 'name'];

/** Runs `validateBranchName` and returns what it threw; fails the test when it did not throw. */
function rejection(name: string, loc: (string | number)[] = LOC): RequestValidationError {
  try {
    validateBranchName(name, loc);
  } catch (error) {
    expect(error).toBeInstanceOf(RequestValidationError);
    return error as RequestValidationError;
  }
  return expect.fail(`${JSON.stringify(name)} was accepted`);
}

const allowedChar = fc.oneof(
  fc.constantFrom(...'abcXYZ0189()[]{}-/. '),
  // Letters and digits beyond ASCII, one outside the Basic Multilingual Plane.
  fc.constantFrom('é', 'ß', 'Ж', 'ж', 'ا', 'ع', '名', '前', 'ひ', 'カ', '한', 'Ω', '٣', '६', '𝒜'),
);
const validName = fc
  .array(allowedChar, { minLength: 1, maxLength: MAX_BRANCH_NAME_LENGTH })
  .map((chars) => chars.join(''))
  .filter((name) => name.trim().length > 0);
const disallowedChar = fc.constantFrom(...'!@_#$%^&*+=,;:?\'"`~<>|\\\t\n', '🚀', '\u0000', '\u200b');

describe('validateBranchName', () => {
  it.each([
    'Main',
    'feature/new-voice',
    'v1.2 (draft)',
    '[exp] {a/b}',
    'Ünïcödé 名前 ветка',
    'عربي ١٢٣',
    'x'.repeat(MAX_BRANCH_NAME_LENGTH),
  ])('accepts %j', (name) => {
    expect(validateBranchName(name, LOC)).toBe(name);
  });

  it('counts characters, not UTF-16 units, against the limit', () => {
    const name = '𝒜'.repeat(MAX_BRANCH_NAME_LENGTH);
    expect(name.length).toBe(2 * MAX_BRANCH_NAME_LENGTH);
    expect(validateBranchName(name, LOC)).toBe(name);
    expect(rejection(`${name}𝒜`).issues[0].type).toBe('string_too_long');
  });

  it('accepts any name of letters, digits, spaces and ( ) [ ] { } - / . up to 140 characters', () => {
    fc.assert(
      fc.property(validName, (name) => {
        expect(validateBranchName(name, LOC)).toBe(name);
      }),
      { numRuns: 200 },
    );
  });

  it.each(['', ' ', '   ', '\t', '\n \u00a0'])('rejects the empty or blank name %j as too short', (name) => {
    const error = rejection(name);
    expect(error.statusCode).toBe(422);
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]).toMatchObject({ loc: LOC, type: 'string_too_short' });
  });

  it('rejects a name of 141 characters as too long', () => {
    const error = rejection('x'.repeat(MAX_BRANCH_NAME_LENGTH + 1));
    expect(error.issues[0]).toMatchObject({ loc: LOC, type: 'string_too_long' });
    expect(error.issues[0].msg).toContain('140');
  });

  it.each(['!', '@', '_', 'main!', 'my_branch', 'a@b', 'tab\there', 'emoji 🚀'])('rejects %j for its characters', (name) => {
    const error = rejection(name);
    expect(error.statusCode).toBe(422);
    expect(error.issues[0]).toMatchObject({ loc: LOC, type: 'string_pattern_mismatch' });
  });

  it('rejects a valid name with any other character inserted, at the loc it was given', () => {
    fc.assert(
      fc.property(
        validName.filter((name) => [...name].length < MAX_BRANCH_NAME_LENGTH),
        disallowedChar,
        fc.nat(),
        fc.array(fc.oneof(fc.string({ maxLength: 8 }), fc.nat()), { minLength: 1, maxLength: 4 }),
        (name, bad, at, loc) => {
          const chars = [...name];
          chars.splice(at % (chars.length + 1), 0, bad);
          const error = rejection(chars.join(''), loc);
          expect(error.issues).toHaveLength(1);
          expect(error.issues[0].loc).toEqual(loc);
          expect(error.issues[0].type).toBe('string_pattern_mismatch');
        },
      ),
      { numRuns: 200 },
    );
  });
});
