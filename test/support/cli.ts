import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

// The official ElevenLabs CLI (`elevenlabs` 1.3, the native binary that @elevenlabs/cli installs
// from its platform package). It comes from @elevenlabs/cli-linux-x64, an optional dependency: the
// registry these machines use has no other platform's package, so depending on @elevenlabs/cli
// itself would break `npm ci` (its lock file cannot name them).

export const CLI = (() => {
  try {
    return path.join(path.dirname(createRequire(import.meta.url).resolve('@elevenlabs/cli-linux-x64/package.json')), 'elevenlabs');
  } catch {
    return '';
  }
})();

export const CLI_AVAILABLE = CLI !== '' && existsSync(CLI);
if (!CLI_AVAILABLE && process.env.CI === 'true') throw new Error('the ElevenLabs CLI binary (@elevenlabs/cli-linux-x64) is not installed');

/** The CLI's environment: its config under `home`, pointed at a listening server with `apiKey`. */
export function cliEnv(home: string, baseUrl: string, apiKey: string): NodeJS.ProcessEnv {
  return { ...process.env, HOME: home, ELEVENLABS_BASE_URL: baseUrl, ELEVENLABS_API_KEY: apiKey, NO_COLOR: '1' };
}
