import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export interface PageProps {
  /** The screen's heading, also the tab's title. */
  title: string;
  /** Buttons beside the heading (the screen's main actions). */
  actions?: ComponentChildren;
  /** A line under the heading. */
  subtitle?: ComponentChildren;
  children: ComponentChildren;
}

/**
 * Every screen's frame: its heading (focused when the screen opens, so a screen reader or a keyboard
 * user starts there after following a link), the tab title, and its actions.
 */
export function Page({ title, actions, subtitle, children }: PageProps) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    document.title = `${title} · branchwise`;
  }, [title]);
  useEffect(() => {
    heading.current?.focus({ preventScroll: true });
  }, []);
  return (
    <section class="page">
      <header class="page-header">
        <div>
          <h1 ref={heading} tabIndex={-1}>
            {title}
          </h1>
          {subtitle && <p class="muted">{subtitle}</p>}
        </div>
        {actions && <div class="actions">{actions}</div>}
      </header>
      {children}
    </section>
  );
}
