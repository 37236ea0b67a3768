import { useCallback, useEffect, useState } from 'preact/hooks';

import { api, type ApiError, type ApiOptions } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /** Loads again (after a change), keeping the current data on screen meanwhile. */
  reload: () => void;
}

/**
 * `GET path` when the component mounts and whenever `path` or `query` change; an older answer that
 * arrives late is dropped (its request is aborted). `path` undefined: nothing is loaded yet.
 */
export function useApi<T>(path: string | undefined, query?: ApiOptions['query']): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: path !== undefined });
  const [attempt, setAttempt] = useState(0);
  const queryKey = JSON.stringify(query ?? {});
  useEffect(() => {
    if (path === undefined) return;
    const controller = new AbortController();
    setState((previous) => ({ data: previous.data, loading: true }));
    api<T>('GET', path, undefined, { query, signal: controller.signal }).then(
      (data) => setState({ data, loading: false }),
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setState((previous) => ({ data: previous.data, error: error as ApiError, loading: false }));
      },
    );
    return () => controller.abort();
    // `query` is compared by value, through queryKey.
  }, [path, queryKey, attempt]);
  const reload = useCallback(() => setAttempt((count) => count + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}
