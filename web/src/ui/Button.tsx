import type { ButtonHTMLAttributes, ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';

export interface ButtonProps extends Omit<ButtonHTMLAttributes<HTMLButtonElement>, 'onClick' | 'children'> {
  variant?: 'primary' | 'secondary' | 'danger' | 'quiet';
  /** Busy from outside (a form being submitted). */
  busy?: boolean;
  /** A promise returned here shows the button busy (and disabled) until it settles. */
  onClick?: (event: MouseEvent) => unknown;
  children: ComponentChildren;
}

/** A real `<button>` (type="button" unless given) that shows when its action is running. */
export function Button({ variant = 'secondary', busy, onClick, disabled, children, type = 'button', class: extra, ...rest }: ButtonProps) {
  const [running, setRunning] = useState(false);
  const isBusy = busy === true || running;
  const handleClick = (event: MouseEvent) => {
    const result = onClick?.(event);
    if (result instanceof Promise) {
      setRunning(true);
      result.finally(() => setRunning(false)).catch(() => undefined);
    }
  };
  return (
    <button
      {...rest}
      type={type}
      class={`button button-${variant}${isBusy ? ' is-busy' : ''}${extra ? ` ${String(extra)}` : ''}`}
      disabled={disabled || isBusy}
      aria-busy={isBusy}
      onClick={onClick ? handleClick : undefined}
    >
      {isBusy && <span class="spinner" aria-hidden="true" />}
      {children}
    </button>
  );
}
