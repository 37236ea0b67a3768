import fc from 'fast-check';

// Ways to spell a branch name so that it looks like another: the look-alike tests share them.

/** Characters that render as nothing: combining grapheme joiner, zero-width ones, BOM, variation selectors, soft hyphen… */
export const INVISIBLES = ['\u034f', '\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\ufe0f', '\ufe00', '\u00ad', '\u180e', '\u3164', '\u115f', '\u200e', '\u202e', '\u2061', '\u{e0001}', '\u{e0100}'];

const toFullwidth = (text: string) => text.replace(/[!-~]/g, (char) => String.fromCharCode(char.charCodeAt(0) + 0xfee0));

/** One way to spell a name so that it looks the same (or nearly) as `name`. */
export const lookAlikeVariant = (name: string) =>
  fc.oneof(
    fc.constant(name.normalize('NFD')),
    fc.constant(name.normalize('NFC')),
    fc.constant(name.toUpperCase()),
    fc.constant(name.toLowerCase()),
    fc.array(fc.boolean(), { minLength: name.length, maxLength: name.length }).map((flips) =>
      [...name].map((char, i) => (flips[i] ? char.toUpperCase() : char.toLowerCase())).join(''),
    ),
    fc.constant(toFullwidth(name)),
    fc.tuple(fc.constantFrom(...INVISIBLES), fc.nat()).map(([invisible, at]) => {
      const chars = [...name];
      chars.splice(at % (chars.length + 1), 0, invisible);
      return chars.join('');
    }),
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 3 })).map(([before, after]) => `${' '.repeat(before)}${name}${' '.repeat(after)}`),
  );

