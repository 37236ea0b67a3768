import { useEffect, useMemo, useState } from 'preact/hooks';

import { ApiError, type ValidationIssue } from '../api';
import {
  type AgentConfig,
  type Branch,
  commitToBranch,
  diffVersions,
  discardDraft,
  type EditableConfig,
  editableOf,
  getBranchHead,
  getDraft,
  getVersion,
  type Json,
  paths,
  saveDraft,
} from '../api/edit';
import { canWrite, useSession } from '../session';
import { Button, Confirm, ErrorPanel, Loading, Page, RelativeTime, useNotice } from '../ui';
import { useApi } from '../use-api';
import { type ChangeRow, ChangesTable, changeRowsOf } from './changes';
import { commitBody, configChanges, reapply, sameJson } from '../config-patch';
import { FORM_FIELDS, type FormField, fieldId, patchedPaths, valueAt, withValueAt } from './edit-model';

/** Where the edit started: the version it is based on (the `expected_version_id` of the commit). */
interface Base {
  versionId: string;
  config: EditableConfig;
}

/** The branch moved under this edit: the head it moved to and what that changed since our base. */
interface Conflict {
  head: AgentConfig;
  theirs: ChangeRow[];
}

interface DraftState {
  savedAt: number;
  isBehindTip: boolean;
}

const pretty = (config: EditableConfig) => JSON.stringify(config, null, 2);

/**
 * `/agents/:agent_id/branches/:branch_id/edit`: the fields people change most and the whole config as
 * JSON; save as draft, discard it, commit with a description. A commit names the version the edit
 * started from, so when someone else committed meanwhile the server refuses it (409) and this shows
 * their change and offers to re-apply ours on top, never overwriting silently.
 */
export function EditScreen({ agent_id: agentId, branch_id: branchId }: { agent_id: string; branch_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const writable = session ? canWrite(session.who.role) : false;
  const branches = useApi<{ results: Branch[] }>(paths.branches(agentId), { include_archived: true });
  const branch = branches.data?.results.find((each) => each.id === branchId);

  const [loadError, setLoadError] = useState<unknown>();
  const [base, setBase] = useState<Base>();
  const [edited, setEdited] = useState<EditableConfig>();
  const [jsonText, setJsonText] = useState('');
  const [jsonError, setJsonError] = useState<string>();
  const [issues, setIssues] = useState<ValidationIssue[]>([]);
  const [draft, setDraft] = useState<DraftState>();
  const [description, setDescription] = useState('');
  const [conflict, setConflict] = useState<Conflict>();
  const [committed, setCommitted] = useState<string>();
  const [confirmingDiscard, setConfirmingDiscard] = useState(false);

  const startFrom = (from: Base, config: EditableConfig) => {
    setBase(from);
    setEdited(config);
    setJsonText(pretty(config));
    setJsonError(undefined);
    setIssues([]);
  };

  const load = async () => {
    setLoadError(undefined);
    try {
      const [head, saved] = await Promise.all([getBranchHead(agentId, branchId), getDraft(agentId, branchId)]);
      if (saved.draft) {
        // Resume the draft against the version it was saved on, so a commit still checks that version.
        const basedOn = saved.draft.based_on_version_id ?? head.version_id;
        const baseConfig = basedOn === head.version_id ? head : await getVersion(agentId, basedOn);
        startFrom({ versionId: basedOn, config: editableOf(baseConfig) }, editableOf(saved.draft));
        setDraft({ savedAt: saved.draft.draft_created_at, isBehindTip: saved.draft.is_behind_tip });
      } else {
        startFrom({ versionId: head.version_id, config: editableOf(head) }, editableOf(head));
        setDraft(undefined);
      }
    } catch (error) {
      setLoadError(error);
    }
  };
  useEffect(() => {
    setConflict(undefined);
    setCommitted(undefined);
    void load();
  }, [agentId, branchId]);

  const changes = useMemo(() => (base && edited ? commitBody(base.config, edited) : {}), [base, edited]);
  const changedPaths = useMemo(() => patchedPaths(changes as Json), [changes]);
  const dirty = changedPaths.length > 0;

  const setField = (field: FormField, raw: string) => {
    if (!edited) return;
    let value: Json = raw;
    if (field.kind === 'number') value = raw.trim() === '' ? null : Number(raw);
    const next = withValueAt(edited, field.path, value);
    setIssues((current) => current.filter((issue) => !sameJson(issue.loc.slice(1) as Json, field.path as Json)));
    setEdited(next);
    setJsonText(pretty(next));
    setJsonError(undefined);
  };
  const setJson = (text: string) => {
    setJsonText(text);
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('The config must be a JSON object.');
      const object = parsed as Record<string, unknown>;
      for (const section of ['conversation_config', 'platform_settings', 'workflow'] as const) {
        if (object[section] === null || typeof object[section] !== 'object' || Array.isArray(object[section])) throw new Error(`"${section}" must be an object.`);
      }
      if (typeof object.name !== 'string') throw new Error('"name" must be a string.');
      if (!Array.isArray(object.tags)) throw new Error('"tags" must be a list.');
      setEdited(editableOf(parsed as EditableConfig));
      setJsonError(undefined);
    } catch (error) {
      setJsonError(error instanceof SyntaxError ? `Not valid JSON: ${error.message}` : (error as Error).message);
    }
  };

  /** Shows a 422's issues at their fields; anything else is the caller's to report. */
  const showIssues = (error: unknown): boolean => {
    if (error instanceof ApiError && error.status === 422 && error.issues.length > 0) {
      setIssues(error.issues);
      const first = error.issues.map((issue) => document.getElementById(fieldId(issue.loc.slice(1)))).find(Boolean);
      (first ?? document.getElementById('config-json'))?.focus();
      return true;
    }
    return false;
  };

  const save = async () => {
    if (!edited) return;
    setIssues([]);
    try {
      const saved = await saveDraft(agentId, branchId, edited);
      setDraft({ savedAt: saved.draft_created_at, isBehindTip: false });
      // A draft saved now is based on the head: keep committing against the version the edit started from.
      notices.success('Draft saved. Only you see it; commit to make a version.');
      branches.reload();
    } catch (error) {
      if (!showIssues(error)) notices.error(error, 'The draft was not saved');
    }
  };

  /** Runs inside the confirm dialog, which shows its error. */
  const discard = async () => {
    const answer = await discardDraft(agentId, branchId);
    const head = await getBranchHead(agentId, branchId);
    startFrom({ versionId: head.version_id, config: editableOf(head) }, editableOf(head));
    setDraft(undefined);
    setConflict(undefined);
    notices.success(answer.discarded ? 'Draft discarded; the editor shows the branch head again.' : 'There was no draft; the editor shows the branch head.');
    branches.reload();
  };

  const commit = async () => {
    if (!base || !edited) return;
    setIssues([]);
    try {
      const version = await commitToBranch(agentId, branchId, base.versionId, changes, description.trim());
      setCommitted(version.version_id);
      startFrom({ versionId: version.version_id, config: editableOf(version) }, editableOf(version));
      setDraft(undefined);
      setDescription('');
      setConflict(undefined);
      notices.success(`Committed version ${version.version_id} to ${branch?.name ?? 'the branch'}.`);
      branches.reload();
    } catch (error) {
      if (error instanceof ApiError && error.status === 409 && error.code === 'concurrent_modification') {
        await showConflict();
      } else if (!showIssues(error)) notices.error(error, 'The commit was refused');
    }
  };

  const showConflict = async () => {
    if (!base) return;
    try {
      const head = await getBranchHead(agentId, branchId);
      const { changes: theirs } = await diffVersions(agentId, base.versionId, head.version_id);
      const mine = new Set(changedPaths);
      const rows = changeRowsOf(theirs).map((row) => (mine.has(row.path) ? { ...row, note: 'you changed it too' } : row));
      setConflict({ head, theirs: rows });
      notices.info('Someone committed to this branch since you started; nothing of yours was written.');
    } catch (error) {
      notices.error(error, 'The branch moved, and its new head could not be loaded');
    }
  };

  const reapplyOnTop = () => {
    if (!base || !edited || !conflict) return;
    const next = reapply(base.config, edited, editableOf(conflict.head));
    startFrom({ versionId: conflict.head.version_id, config: editableOf(conflict.head) }, next);
    setConflict(undefined);
    setDraft((current) => (current ? { ...current, isBehindTip: false } : current));
    notices.info('Your changes are re-applied on the latest version. Review them and commit again.');
  };

  const issuesAt = (path: (string | number)[]) => issues.filter((issue) => sameJson(issue.loc.slice(1) as Json, path as Json));
  const formPaths = FORM_FIELDS.map((field) => field.path);
  const otherIssues = issues.filter((issue) => !formPaths.some((path) => sameJson(issue.loc.slice(1) as Json, path as Json)));

  const title = `Edit ${branch?.name ?? 'branch'}`;
  const agentLink = `/agents/${encodeURIComponent(agentId)}`;
  if (loadError) {
    return (
      <Page title={title}>
        <ErrorPanel error={loadError} title="The branch could not be loaded" onRetry={() => void load()} />
      </Page>
    );
  }
  if (!base || !edited) {
    return (
      <Page title={title}>
        <Loading label="Loading the branch…" />
      </Page>
    );
  }

  const branchLink = `${agentLink}/branches/${encodeURIComponent(branchId)}`;
  return (
    <Page
      title={title}
      actions={
        <>
          <a class="button button-quiet" href={`${branchLink}/merge`}>
            Merge…
          </a>
          <a class="button button-quiet" href={`${branchLink}/rebase`}>
            Rebase…
          </a>
          <a class="button button-quiet" href={`${agentLink}/proposals`}>
            Proposals
          </a>
        </>
      }
      subtitle={
        <>
          <a href={agentLink}>{base.config.name || 'Agent'}</a> · based on version <span class="mono">{base.versionId}</span>
          {branch?.is_archived && <span class="badge">archived</span>}
        </>
      }
    >
      {!writable && <p class="notice-inline">Your role can read this branch but not change it.</p>}
      {committed && (
        <p class="notice-inline notice-inline-success" role="status">
          Committed version{' '}
          <a class="mono" href={`${agentLink}/versions/${encodeURIComponent(committed)}`}>
            {committed}
          </a>
          .
        </p>
      )}
      {draft && (
        <div class={`notice-inline${draft.isBehindTip ? ' notice-inline-warning' : ''}`} role="status">
          <p>
            You are editing your draft, saved <RelativeTime seconds={draft.savedAt} />.{' '}
            {draft.isBehindTip && <strong>The branch has new versions since: committing will show their changes first.</strong>}
          </p>
        </div>
      )}
      {conflict && (
        <section class="conflict card" aria-labelledby="conflict-title" role="alert">
          <h2 id="conflict-title">Someone else committed to this branch</h2>
          <p>
            The branch head is now <span class="mono">{conflict.head.version_id}</span>; you started from{' '}
            <span class="mono">{base.versionId}</span>. Your commit was not written. Their changes:
          </p>
          <ChangesTable caption="Their changes since your base" rows={conflict.theirs} beforeLabel="Your base" afterLabel="Their head" />
          <div class="actions">
            <Button variant="primary" onClick={reapplyOnTop}>
              Re-apply my changes on top
            </Button>
            <Button
              onClick={() => {
                startFrom({ versionId: conflict.head.version_id, config: editableOf(conflict.head) }, editableOf(conflict.head));
                setConflict(undefined);
                notices.info('Your changes are dropped; the editor shows the latest version.');
              }}
            >
              Drop mine, load theirs
            </Button>
            <span class="muted small">Where you both changed a field, re-applying puts your value over theirs: check it before committing.</span>
          </div>
        </section>
      )}

      <form class="edit-form" onSubmit={(event) => event.preventDefault()}>
        <div class="edit-columns">
          <section class="card edit-fields" aria-labelledby="common-fields">
            <h2 id="common-fields">Common fields</h2>
            {FORM_FIELDS.map((field) => {
              const id = fieldId(field.path);
              const value = valueAt(edited as unknown as Json, field.path);
              const fieldIssues = issuesAt(field.path);
              const shownValue = value === undefined || value === null ? '' : typeof value === 'string' ? value : String(value);
              const common = {
                id,
                name: field.path.join('.'),
                value: shownValue,
                disabled: !writable,
                'aria-invalid': fieldIssues.length > 0,
                'aria-describedby': fieldIssues.length > 0 ? `${id}-error` : field.hint ? `${id}-hint` : undefined,
              };
              return (
                <div class="field" key={id}>
                  <label for={id}>{field.label}</label>
                  {field.kind === 'long' ? (
                    <textarea {...common} rows={field.path.at(-1) === 'prompt' ? 8 : 3} onInput={(event) => setField(field, event.currentTarget.value)} />
                  ) : field.kind === 'number' ? (
                    <input {...common} type="number" step="any" onInput={(event) => setField(field, event.currentTarget.value)} />
                  ) : (
                    <input {...common} type="text" onInput={(event) => setField(field, event.currentTarget.value)} />
                  )}
                  {field.hint && fieldIssues.length === 0 && (
                    <p id={`${id}-hint`} class="muted small hint">
                      {field.hint}
                    </p>
                  )}
                  {fieldIssues.length > 0 && (
                    <p id={`${id}-error`} class="field-error" role="alert">
                      {fieldIssues.map((issue) => issue.msg).join(' ')}
                    </p>
                  )}
                </div>
              );
            })}
          </section>

          <div class="card edit-json">
            <label for="config-json">The whole config (JSON)</label>
            <textarea
              id="config-json"
              class="mono json-editor"
              spellcheck={false}
              wrap="off"
              rows={28}
              value={jsonText}
              disabled={!writable}
              aria-invalid={jsonError !== undefined || otherIssues.length > 0}
              aria-describedby="config-json-errors"
              onInput={(event) => setJson(event.currentTarget.value)}
            />
            <div id="config-json-errors">
              {jsonError && (
                <p class="field-error" role="alert">
                  {jsonError}
                </p>
              )}
              {otherIssues.length > 0 && (
                <ul class="field-error issue-list" role="alert">
                  {otherIssues.map((issue, index) => (
                    <li key={index}>
                      <span class="mono">{issue.loc.slice(1).join('.') || 'body'}</span>: {issue.msg}
                    </li>
                  ))}
                </ul>
              )}
            </div>
          </div>
        </div>

        {writable && (
          <div class="card commit-bar">
            <p class="muted small" aria-live="polite">
              {dirty ? `${changedPaths.length} changed field${changedPaths.length === 1 ? '' : 's'}: ${changedPaths.slice(0, 4).join(', ')}${changedPaths.length > 4 ? '…' : ''}` : 'No changes from the version you started from.'}
            </p>
            {dirty && (
              <details class="review-changes">
                <summary>Review your changes</summary>
                <ChangesTable
                  caption="Your changes from the version you started from"
                  rows={configChanges(base.config as unknown as Json, edited as unknown as Json)}
                  beforeLabel="Started from"
                  afterLabel="Yours"
                />
              </details>
            )}
            <label class="commit-description">
              <span>Description</span>
              <input type="text" name="description" value={description} maxLength={2000} placeholder="What changed and why" onInput={(event) => setDescription(event.currentTarget.value)} />
            </label>
            <div class="actions">
              <Button onClick={save} disabled={jsonError !== undefined}>
                Save as draft
              </Button>
              {draft && (
                <Button variant="quiet" class="danger-text" onClick={() => setConfirmingDiscard(true)}>
                  Discard draft
                </Button>
              )}
              <Button variant="primary" onClick={commit} disabled={!dirty || jsonError !== undefined || conflict !== undefined}>
                Commit
              </Button>
            </div>
          </div>
        )}
      </form>

      <Confirm open={confirmingDiscard} title="Discard your draft?" confirmLabel="Discard draft" danger onConfirm={discard} onClose={() => setConfirmingDiscard(false)}>
        <p>Its changes are lost; the editor goes back to the branch head.</p>
      </Confirm>
    </Page>
  );
}
