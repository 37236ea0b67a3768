import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

import { api, type ApiError, type ApiOptions } from './api';

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /**
   * Loads again (after a change), keeping the current data on screen meanwhile. Resolves once that
   * load has its answer or its error: a screen whose other reads name what this one lists (a new
   * branch) reloads those after it, so that they never show a name not yet known.
   */
  reload: () => Promise<void>;
}

/**
 * `GET path` when the component mounts and whenever `path` or `query` change; an older answer that
 * arrives late is dropped (its request is aborted). `path` undefined: nothing is loaded yet.
 */
export function useApi<T>(path: string | undefined, query?: ApiOptions['query']): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: path !== undefined });
  const [attempt, setAttempt] = useState(0);
  // Who waits for the next load to settle (`reload`'s promises).
  const waiting = useRef<(() => void)[]>([]);
  const queryKey = JSON.stringify(query ?? {});
  useEffect(() => {
    const settle = () => {
      for (const resolve of waiting.current.splice(0)) resolve();
    };
    if (path === undefined) return settle();
    const controller = new AbortController();
    setState((previous) => ({ data: previous.data, loading: true }));
    api<T>('GET', path, undefined, { query, signal: controller.signal }).then(
      (data) => {
        setState({ data, loading: false });
        settle();
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setState((previous) => ({ data: previous.data, error: error as ApiError, loading: false }));
        settle();
      },
    );
    return () => controller.abort();
    // `query` is compared by value, through queryKey.
  }, [path, queryKey, attempt]);
  const reload = useCallback(
    () =>
      new Promise<void>((resolve) => {
        waiting.current.push(resolve);
        setAttempt((count) => count + 1);
      }),
    [],
  );
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/**
 * Whether each of `loads` has its answer or its error. A screen that shows names or labels looked
 * up in other reads (a user's name, a branch's) shows them once those reads are settled, never an
 * id first and a name a moment later (a user, or a test, reading in that moment sees the id).
 */
export function settled(...loads: Loaded<unknown>[]): boolean {
  return loads.every((load) => load.data !== undefined || load.error !== undefined);
}
