import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { describe, expect, it } from 'vitest';

// The layers' import rules of .dependency-cruiser.cjs (issue 17): nothing under the features
// imports one, the pure core imports only itself, and no module imports itself through others.
// Broken, this lists each import (or cycle) that breaks one.

const root = fileURLToPath(new URL('..', import.meta.url));
const depcruise = fileURLToPath(new URL('../node_modules/dependency-cruiser/bin/dependency-cruise.mjs', import.meta.url));

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
  cycle?: { name: string }[];
}

describe('the layers', () => {
  it('keep their import rules', { timeout: 120_000 }, async () => {
    // depcruise exits non-zero when a rule is broken; its report is on stdout either way.
    const { stdout } = await promisify(execFile)(process.execPath, [depcruise, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
      cwd: root,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: { stdout?: string }) => {
      if (!error.stdout) throw error;
      return { stdout: error.stdout };
    });
    const { summary } = JSON.parse(stdout) as { summary: { violations: Violation[]; totalCruised: number } };
    // Cruised at all: a wrong path or config would find no module and so no violation.
    expect(summary.totalCruised).toBeGreaterThan(50);
    const broken = summary.violations.map(
      (violation) => `${violation.rule.name}: ${violation.from} → ${violation.cycle?.map((step) => step.name).join(' → ') ?? violation.to}`,
    );
    expect(broken).toEqual([]);
  });
});
