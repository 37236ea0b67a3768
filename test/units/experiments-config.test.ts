import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';

// Issue 20's settings: how they are read from the environment, and what is refused.

describe('experiment settings', () => {
  it('defaults: 90 days kept, exposures recorded, written every 200 ms, no public URL', () => {
    const config = loadConfig({});
    expect([config.experimentRetentionDays, config.recordExposures, config.exposureFlushIntervalMs, config.publicUrl]).toEqual([90, true, 200, undefined]);
  });

  it('reads them, and refuses what they cannot be', () => {
    const config = loadConfig({ EXPERIMENT_RETENTION_DAYS: '0', RECORD_EXPOSURES: 'false', EXPOSURE_FLUSH_INTERVAL_MS: '1000', PUBLIC_URL: 'https://branchwise.example.test/' });
    expect([config.experimentRetentionDays, config.recordExposures, config.exposureFlushIntervalMs, config.publicUrl]).toEqual([0, false, 1000, 'https://branchwise.example.test']);
    expect(() => loadConfig({ EXPOSURE_FLUSH_INTERVAL_MS: '1001' })).toThrow(/EXPOSURE_FLUSH_INTERVAL_MS/);
    expect(() => loadConfig({ EXPOSURE_FLUSH_INTERVAL_MS: '0' })).toThrow(/EXPOSURE_FLUSH_INTERVAL_MS/);
    expect(() => loadConfig({ RECORD_EXPOSURES: 'maybe' })).toThrow(/RECORD_EXPOSURES/);
    expect(() => loadConfig({ EXPERIMENT_RETENTION_DAYS: '-1' })).toThrow(/EXPERIMENT_RETENTION_DAYS/);
    expect(() => loadConfig({ PUBLIC_URL: 'ftp://x' })).toThrow(/PUBLIC_URL/);
    expect(() => loadConfig({ PUBLIC_URL: 'not a url' })).toThrow(/PUBLIC_URL/);
  });
});
