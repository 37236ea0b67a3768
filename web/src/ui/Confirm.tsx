import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';

import { Button } from './Button';
import { describeError } from './Notice';

export interface ConfirmProps {
  /** Shown while true (as a modal `<dialog>`: focus is trapped, Escape cancels). */
  open: boolean;
  title: string;
  children?: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  /** Runs the action; the dialog stays open and busy until it settles, and shows its error if it fails. */
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
}

/** Asks before an action that cannot be undone, and runs it. */
export function Confirm({ open, title, children, confirmLabel, danger, onConfirm, onClose }: ConfirmProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [failure, setFailure] = useState<string>();
  // Unique per dialog: a screen with two dialogs must not name both by the first one's title.
  const titleId = useId();
  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (open && !element.open) {
      setFailure(undefined);
      element.showModal();
    } else if (!open && element.open) element.close();
  }, [open]);
  const confirm = async () => {
    setFailure(undefined);
    try {
      await onConfirm();
      onClose();
    } catch (error) {
      setFailure(describeError(error));
    }
  };
  return (
    <dialog ref={dialog} class="confirm" aria-labelledby={titleId} onClose={onClose}>
      <h2 id={titleId}>{title}</h2>
      {children && <div class="confirm-body">{children}</div>}
      {failure && (
        <p class="field-error" role="alert">
          {failure}
        </p>
      )}
      <div class="actions">
        <Button onClick={onClose}>Cancel</Button>
        <Button variant={danger ? 'danger' : 'primary'} onClick={confirm}>
          {confirmLabel}
        </Button>
      </div>
    </dialog>
  );
}
