import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { branchNameKey, MAX_BRANCH_NAME_LENGTH, validateBranchName } from '../../src/features/branches/branch-name.js';
import { RequestValidationError } from '../../src/errors.js';
import { INVISIBLES, lookAlikeVariant } from '../support/look-alikes.js';

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

  it('accepts any name of letters, digits, spaces and ( ) [ ] { } - / . up to 140 characters, without its outer spaces', () => {
    fc.assert(
      fc.property(validName, (name) => {
        expect(validateBranchName(name, LOC)).toBe(name.replace(/^ +| +$/g, ''));
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

// ---------------------------------------------------------------------------------------------
// Look-alikes: a name that looks like another is refused or has the same key
// ---------------------------------------------------------------------------------------------

/** Letters with accents (composed), the ones NFD splits, and others whose case or width varies. */
const lookAlikeBase = fc
  .array(fc.constantFrom(...'abcMainXYZ019-/. ', 'é', 'ü', 'Å', 'ñ', 'ß', 'ç', 'Ж', 'Σ', 'ő', 'ḗ'), { minLength: 1, maxLength: 30 })
  .map((chars) => chars.join(''))
  .filter((name) => name.trim().length > 0);

/** What `validateBranchName` stores, or undefined when it refuses. */
function stored(name: string): string | undefined {
  try {
    return validateBranchName(name, LOC);
  } catch (error) {
    expect(error).toBeInstanceOf(RequestValidationError);
    return undefined;
  }
}

describe('look-alike branch names', () => {
  it('a look-alike of an accepted name is refused or has its key (so the two cannot coexist)', () => {
    fc.assert(
      fc.property(
        lookAlikeBase.chain((name) => fc.tuple(fc.constant(name), lookAlikeVariant(name), lookAlikeVariant(name))),
        ([name, variant, again]) => {
          const base = stored(name);
          // Only spaces and letters the rules accept: the base itself is accepted.
          expect(base).toBeDefined();
          for (const look of [variant, again]) {
            const kept = stored(look);
            if (kept !== undefined) expect(branchNameKey(kept), JSON.stringify([name, look])).toBe(branchNameKey(base!));
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('what is stored is NFC, has no outer spaces, and is stored again unchanged', () => {
    fc.assert(
      fc.property(lookAlikeBase.chain(lookAlikeVariant), (name) => {
        const kept = stored(name);
        if (kept === undefined) return;
        expect(kept).toBe(kept.normalize('NFC'));
        expect(kept).toBe(kept.trim());
        expect(stored(kept)).toBe(kept);
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    ['café in NFC and in NFD', 'caf\u00e9', 'cafe\u0301'],
    ['a trailing space', 'Main', 'Main '],
    ['case', 'Main', 'main'],
    ['width', 'Main', '\uff4d\uff41\uff49\uff4e'],
    ['ß and SS', 'Straße', 'STRASSE'],
    ['runs of spaces', 'a b', 'a  b'],
  ])('%s: the same key', (_, one, other) => {
    expect(branchNameKey(validateBranchName(other, LOC))).toBe(branchNameKey(validateBranchName(one, LOC)));
  });

  it.each(INVISIBLES.map((invisible) => [`U+${invisible.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`, invisible]))(
    'a name with the invisible %s is refused',
    (_, invisible) => {
      expect(rejection(`Ma${invisible}in`).issues[0]).toMatchObject({ loc: LOC, type: 'string_pattern_mismatch' });
    },
  );

  it.each([['only combining marks', '\u0301\u0302'], ['a leading mark', '\u0301Main'], ['a mark after a space', 'Main \u0301x'], ['a mark after punctuation', 'v1.\u0301']])(
    'a name with %s is refused',
    (_, name) => {
      expect(rejection(name).issues[0]).toMatchObject({ loc: LOC, type: 'string_pattern_mismatch' });
    },
  );

  it('names in scripts that need combining marks are still accepted', () => {
    for (const name of ['हिन्दी', 'ภาษาไทย', 'cafe\u0301', 'Tiếng Việt']) expect(stored(name)).toBe(name.normalize('NFC'));
  });
});
