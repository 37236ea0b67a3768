import { diffWordsWithSpace } from 'diff';
import { useMemo } from 'preact/hooks';

/** Past this the word diff gives up and shows both texts whole (two prompts with nothing in common). */
const WORD_DIFF_TIMEOUT_MS = 40;

/** A string long enough, or on several lines, to be shown as a word diff rather than two values. */
export function isLongText(value: unknown): value is string {
  return typeof value === 'string' && (value.length > 80 || value.includes('\n'));
}

/**
 * Two texts side by side, the removed words marked in the left one and the added words in the
 * right one (`diff`'s word diff, whitespace included: diffWords gives an unchanged word the right
 * side's spacing, so the left text would not read as it is stored).
 */
export function WordDiff({ before, after, beforeLabel, afterLabel }: { before: string; after: string; beforeLabel: string; afterLabel: string }) {
  const parts = useMemo(() => diffWordsWithSpace(before, after, { timeout: WORD_DIFF_TIMEOUT_MS }), [before, after]);
  return (
    <div class="side-by-side">
      <div class="side">
        <div class="side-label muted small">{beforeLabel}</div>
        <pre class="text-diff">
          {parts
            ? parts.filter((part) => !part.added).map((part, index) => (part.removed ? <del key={index}>{part.value}</del> : <span key={index}>{part.value}</span>))
            : before}
        </pre>
      </div>
      <div class="side">
        <div class="side-label muted small">{afterLabel}</div>
        <pre class="text-diff">
          {parts
            ? parts.filter((part) => !part.removed).map((part, index) => (part.added ? <ins key={index}>{part.value}</ins> : <span key={index}>{part.value}</span>))
            : after}
        </pre>
      </div>
    </div>
  );
}
