import { ElevenLabsError } from '@elevenlabs/elevenlabs-js';
import { expect } from 'vitest';

/** The error an SDK call fails with; the test fails if the call succeeds. */
export async function failure(promise: Promise<unknown>): Promise<ElevenLabsError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error, 'expected the call to fail').toBeInstanceOf(ElevenLabsError);
  return error as ElevenLabsError;
}

/** Upstream's `{"detail": {code, message, …}}` of a non-422 error. */
export function detailOf(error: ElevenLabsError): { code: string; message: string; type: string } {
  return (error.body as { detail: { code: string; message: string; type: string } }).detail;
}

export function codeOf(error: ElevenLabsError): string {
  return detailOf(error).code;
}
