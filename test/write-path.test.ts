import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

// One write path for a new version (src/features/versions/README.md): only commit.ts inserts a
// version or moves a branch head, so the lock order and the gapless seq_no hold by construction.

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return file.endsWith('.ts') ? [file] : [];
  });
}

const files = sourceFiles('src').filter((file) => !file.includes(`${path.sep}migrations${path.sep}`));
const filesMatching = (pattern: RegExp) =>
  files.filter((file) => pattern.test(readFileSync(file, 'utf8'))).map((file) => file.split(path.sep).join('/'));

describe('the write path of versions', () => {
  it('only commit.ts writes a version', () => {
    expect(filesMatching(/insertVersion\(|versionsStore\([^)]*\)\.insert\(/)).toEqual(['src/features/versions/commit.ts']);
    expect(filesMatching(/insertInto\(\s*'versions'\s*\)/)).toEqual(['src/features/versions/versions.store.ts']);
  });

  it('only commit.ts moves a branch head', () => {
    expect(filesMatching(/head_version_id:\s*\w+\.id\b/)).toEqual(['src/features/versions/commit.ts']);
  });
});
