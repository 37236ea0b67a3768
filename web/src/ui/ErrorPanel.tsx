import { ApiError } from '../api';
import { Button } from './Button';

/** A failed load: the server's message, its status and code, and a way to try again. */
export function ErrorPanel({ error, title = 'This could not be loaded', onRetry }: { error: unknown; title?: string; onRetry?: () => void }) {
  const apiError = error instanceof ApiError ? error : undefined;
  const requestId = apiError && typeof apiError.detail === 'object' && apiError.detail !== null && 'request_id' in apiError.detail
    ? String((apiError.detail as { request_id: unknown }).request_id)
    : undefined;
  return (
    <div class="error-panel" role="alert">
      <h2>{title}</h2>
      <p>{error instanceof Error ? error.message : String(error)}</p>
      {apiError && (
        <p class="muted small">
          {apiError.status > 0 ? `HTTP ${apiError.status} · ` : ''}
          {apiError.code}
          {requestId ? ` · ${requestId}` : ''}
        </p>
      )}
      {onRetry && <Button onClick={onRetry}>Try again</Button>}
    </div>
  );
}
