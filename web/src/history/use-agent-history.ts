import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

import type { ApiError } from '../api';
import { type AgentVersion, listAgentVersions } from '../api/history';

export const HISTORY_PAGE_SIZE = 100;

export interface AgentHistory {
  versions: AgentVersion[];
  hasMore: boolean;
  loading: boolean;
  error: ApiError | undefined;
  /** Loads the next (older) page; does nothing while one is loading or when there is none. */
  loadOlder: () => void;
  /** Starts again from the newest version (after a change). */
  reload: () => void;
}

/** The agent's versions on every branch, newest first, a page at a time (the API's cursor). */
export function useAgentHistory(agentId: string): AgentHistory {
  const [versions, setVersions] = useState<AgentVersion[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<ApiError>();
  const [generation, setGeneration] = useState(0);
  const inFlight = useRef<AbortController | undefined>(undefined);

  const load = useCallback(
    (from: string | undefined, replace: boolean) => {
      inFlight.current?.abort();
      const controller = new AbortController();
      inFlight.current = controller;
      setLoading(true);
      setError(undefined);
      listAgentVersions(agentId, from, HISTORY_PAGE_SIZE, controller.signal).then(
        (page) => {
          if (controller.signal.aborted) return;
          setVersions((previous) => (replace ? page.versions : [...previous, ...page.versions]));
          setCursor(page.next_cursor);
          setLoading(false);
        },
        (failure: unknown) => {
          if (controller.signal.aborted) return;
          setError(failure as ApiError);
          setLoading(false);
        },
      );
    },
    [agentId],
  );

  useEffect(() => {
    load(undefined, true);
    return () => inFlight.current?.abort();
  }, [load, generation]);

  const hasMore = typeof cursor === 'string';
  const loadOlder = useCallback(() => {
    if (loading || typeof cursor !== 'string') return;
    load(cursor, false);
  }, [loading, cursor, load]);
  const reload = useCallback(() => setGeneration((count) => count + 1), []);
  return { versions, hasMore, loading, error, loadOlder, reload };
}
