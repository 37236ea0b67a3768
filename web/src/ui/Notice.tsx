import { type ComponentChildren, createContext } from 'preact';
import { useCallback, useContext, useMemo, useState } from 'preact/hooks';

import { ApiError } from '../api';

export interface Notice {
  id: number;
  kind: 'success' | 'error' | 'info';
  message: string;
}

interface Notices {
  /** Shows what an action did ("Agent “Support” created"). */
  success(message: string): void;
  /** Shows why an action failed: the server's message for an ApiError. */
  error(error: unknown, prefix?: string): void;
  info(message: string): void;
}

const NoticeContext = createContext<Notices | undefined>(undefined);
const SHOWN_MS = { success: 5000, info: 5000, error: 12000 };
let nextId = 1;

/** Screens call `useNotice()` to say what an action did or why it failed. */
export function useNotice(): Notices {
  const notices = useContext(NoticeContext);
  if (!notices) throw new Error('useNotice outside <NoticeProvider>');
  return notices;
}

/** The toasts, in one polite live region at the bottom of the page; errors stay longer and can be closed. */
export function NoticeProvider({ children }: { children: ComponentChildren }) {
  const [shown, setShown] = useState<Notice[]>([]);
  const dismiss = useCallback((id: number) => setShown((list) => list.filter((notice) => notice.id !== id)), []);
  const push = useCallback(
    (kind: Notice['kind'], message: string) => {
      const id = nextId++;
      setShown((list) => [...list.slice(-3), { id, kind, message }]);
      setTimeout(() => dismiss(id), SHOWN_MS[kind]);
    },
    [dismiss],
  );
  const notices = useMemo<Notices>(
    () => ({
      success: (message) => push('success', message),
      info: (message) => push('info', message),
      error: (error, prefix) => push('error', `${prefix ? `${prefix}: ` : ''}${describeError(error)}`),
    }),
    [push],
  );
  return (
    <NoticeContext.Provider value={notices}>
      {children}
      <div class="notices" role="status" aria-live="polite">
        {shown.map((notice) => (
          <div key={notice.id} class={`notice notice-${notice.kind}`}>
            <span>{notice.message}</span>
            <button type="button" class="notice-close" aria-label="Dismiss" onClick={() => dismiss(notice.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </NoticeContext.Provider>
  );
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
