import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { resultsFile } from '../../bench/results-file.js';

// CI runs `npm run bench -- --quick`: its rough figures must never land in the committed results.

describe('where the bench writes its table', () => {
  it('a full run writes bench/results.md, a --quick run another file', () => {
    expect(fileURLToPath(resultsFile(false))).toMatch(/bench\/results\.md$/);
    expect(fileURLToPath(resultsFile(true))).toMatch(/bench\/results-quick\.md$/);
  });

  it('git ignores the quick results and tracks the full ones', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const ignored = (file: string) => {
      try {
        execFileSync('git', ['check-ignore', '-q', '--no-index', file], { cwd: root });
        return true;
      } catch {
        return false;
      }
    };
    expect(ignored('bench/results-quick.md')).toBe(true);
    expect(ignored('bench/results.md')).toBe(false);
  });
});
