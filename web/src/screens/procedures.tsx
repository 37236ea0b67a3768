import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';

import { ApiError } from '../api';
import {
  createProcedure,
  discardProcedureDraft,
  type ProcedureDraft,
  type ProcedureFields,
  type ProcedureListItem,
  type ProcedureType,
  procedurePath,
  proceduresPath,
  publishProcedures,
  removeProcedure,
  saveProcedureDraft,
} from '../api/procedures';
import { canWrite, useSession } from '../session';
import { Button, type Column, Confirm, ErrorPanel, Loading, Page, Table, useNotice } from '../ui';
import { useApi } from '../use-api';

const TYPES: { value: ProcedureType; label: string }[] = [
  { value: 'free_form', label: 'Free form' },
  { value: 'deterministic', label: 'Deterministic (steps as JSON)' },
  { value: 'folder', label: 'Folder' },
];

/**
 * `/agents/:agent_id/branches/:branch_id/procedures`: a branch's procedures as the caller sees them
 * (their drafts over the head), create, view and edit a draft, discard it, remove; publishing
 * commits the caller's drafts as one agent version. The open procedure is in the URL (`?procedure=`).
 */
export function ProceduresScreen({ agent_id: agentId, branch_id: branchId }: { agent_id: string; branch_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const { path, query, route } = useLocation();
  const writable = session ? canWrite(session.who.role) : false;
  const selected = query.procedure;

  const branch = useApi<{ name: string }>(`/v1/convai/agents/${encodeURIComponent(agentId)}/branches/${encodeURIComponent(branchId)}`);
  const list = useApi<{ procedures: ProcedureListItem[] }>(proceduresPath(agentId, branchId));
  // The branch head: which procedures are published (its map), and its version (did a publish make one?).
  const head = useApi<BranchHead>(`/v1/convai/agents/${encodeURIComponent(agentId)}`, { branch_id: branchId });
  const [publishing, setPublishing] = useState(false);
  const [description, setDescription] = useState('');
  const [creating, setCreating] = useState(false);
  const [newProcedure, setNewProcedure] = useState<ProcedureFields>({ name: '', type: 'free_form', trigger: '', content: '' });

  const listed = list.data?.procedures ?? [];
  const publishedMap = head.data?.procedures ?? {};
  const isPublished = (procedureId: string) => procedureId in publishedMap;
  // Published procedures the list leaves out are removals the caller staged.
  const removals: Row[] = Object.values(publishedMap)
    .filter((ref) => !listed.some((procedure) => procedure.procedure_id === ref.procedure_id))
    .map((ref) => ({ procedure_id: ref.procedure_id, name: ref.name, type: ref.type, trigger: ref.trigger ?? '', has_draft: true, folder_parent_id: null, state: 'removal' }));
  const procedures: Row[] = [
    ...listed.map((procedure): Row => ({
      ...procedure,
      state: !procedure.has_draft ? 'published' : isPublished(procedure.procedure_id) ? 'draft' : 'new',
    })),
    ...removals,
  ];
  const drafts = procedures.filter((procedure) => procedure.has_draft).length;
  const reload = () => {
    list.reload();
    head.reload();
  };
  const undoRemoval = async (procedure: Row) => {
    try {
      await discardProcedureDraft(agentId, branchId, procedure.procedure_id);
      notices.success(`Removal of “${procedure.name}” undone`);
      reload();
    } catch (error) {
      notices.error(error, 'The removal was not undone');
    }
  };
  const open = (procedureId: string | undefined) => route(procedureId ? `${path}?procedure=${encodeURIComponent(procedureId)}` : path);

  const create = async (event: SubmitEvent) => {
    event.preventDefault();
    setCreating(true);
    try {
      const created = await createProcedure(agentId, branchId, { ...newProcedure, name: newProcedure.name.trim() });
      notices.success(`Procedure “${newProcedure.name.trim() || 'Untitled'}” created as your draft`);
      setNewProcedure({ name: '', type: 'free_form', trigger: '', content: '' });
      reload();
      open(created.procedure_id);
    } catch (error) {
      notices.error(error, 'The procedure was not created');
    } finally {
      setCreating(false);
    }
  };

  const publish = async () => {
    const before = head.data?.version_id;
    let published: { version_id: string };
    try {
      published = await publishProcedures(agentId, branchId, description.trim());
    } catch (error) {
      throw new Error(describePublishError(error, procedures));
    }
    if (published.version_id === before) notices.info('Nothing to publish: your drafts match what is published.');
    else notices.success(`Published as version ${published.version_id}`);
    setDescription('');
    reload();
  };

  const columns: Column<Row>[] = [
    {
      header: 'Name',
      cell: (procedure) =>
        procedure.state === 'removal' ? (
          <s>{procedure.name || 'Untitled'}</s>
        ) : (
        <a href={`${path}?procedure=${encodeURIComponent(procedure.procedure_id)}`} aria-current={procedure.procedure_id === selected ? 'true' : undefined}>
          {procedure.name || 'Untitled'}
        </a>
        ),
    },
    { header: 'Type', cell: (procedure) => TYPES.find((type) => type.value === procedure.type)?.label ?? procedure.type },
    { header: 'State', cell: (procedure) => <DraftState state={procedure.state} /> },
    { header: 'Trigger', cell: (procedure) => <span class="muted small">{procedure.trigger || '—'}</span> },
    ...(writable
      ? [
          {
            header: <span class="visually-hidden">Actions</span>,
            class: 'actions',
            cell: (procedure: Row) =>
              procedure.state === 'removal' ? (
                <Button variant="quiet" onClick={() => undoRemoval(procedure)} aria-label={`Undo removal of ${procedure.name}`}>
                  Undo removal
                </Button>
              ) : null,
          },
        ]
      : []),
  ];

  const branchName = branch.data?.name ?? branchId;
  return (
    <Page
      title="Procedures"
      subtitle={
        <>
          <a href={`/agents/${encodeURIComponent(agentId)}`}>{head.data?.name || 'Agent'}</a> · branch <strong>{branchName}</strong> · your drafts over what is published
        </>
      }
      actions={
        writable && (
          <>
            {drafts === 0 && list.data && <span class="muted small">No drafts to publish</span>}
            <Button variant="primary" disabled={drafts === 0} onClick={() => setPublishing(true)}>
              Publish{drafts > 0 ? ` ${drafts} draft${drafts === 1 ? '' : 's'}` : ''}
            </Button>
          </>
        )
      }
    >
      {(list.error ?? head.error) && <ErrorPanel error={list.error ?? head.error} title="The procedures could not be loaded" onRetry={reload} />}
      {(!list.data || !head.data) && (list.loading || head.loading) && <Loading label="Loading procedures…" />}
      {list.data && head.data && (
        <div class="procedures-layout">
          <div>
            <div aria-busy={list.loading}>
              <Table
                caption={`Procedures of branch ${branchName}`}
                columns={columns}
                rows={procedures}
                rowKey={(procedure) => procedure.procedure_id}
                empty="No procedures on this branch yet."
              />
            </div>
            {writable && (
              <form class="card procedure-create" onSubmit={create} aria-labelledby="create-heading">
                <h2 id="create-heading">New procedure</h2>
                <label>
                  <span>Name</span>
                  <input type="text" value={newProcedure.name} maxLength={200} required onInput={(event) => setNewProcedure({ ...newProcedure, name: event.currentTarget.value })} />
                </label>
                <label>
                  <span>Type</span>
                  <select value={newProcedure.type} onChange={(event) => setNewProcedure({ ...newProcedure, type: event.currentTarget.value as ProcedureType })}>
                    {TYPES.map((type) => (
                      <option key={type.value} value={type.value}>
                        {type.label}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  <span>Trigger</span>
                  <input type="text" value={newProcedure.trigger} placeholder="When the agent should use it" onInput={(event) => setNewProcedure({ ...newProcedure, trigger: event.currentTarget.value })} />
                </label>
                <Button type="submit" variant="primary" busy={creating}>
                  Create procedure
                </Button>
                <p class="muted small">It is your draft until you publish.</p>
              </form>
            )}
          </div>
          {selected ? (
            <ProcedureEditor
              key={selected}
              agentId={agentId}
              branchId={branchId}
              procedure={procedures.find((procedure) => procedure.procedure_id === selected)}
              procedureId={selected}
              writable={writable}
              onChanged={reload}
              onGone={() => {
                reload();
                open(undefined);
              }}
            />
          ) : (
            <p class="muted card">Open a procedure to see or edit it.</p>
          )}
        </div>
      )}

      <Confirm
        open={publishing}
        title={`Publish your drafts on ${branchName}?`}
        confirmLabel="Publish"
        onConfirm={publish}
        onClose={() => setPublishing(false)}
      >
        <p>
          Publishing is a commit: one new version of the branch with {drafts === 1 ? 'your draft' : `your ${drafts} drafts`} (and removals you staged), checked
          as a whole.
        </p>
        <label class="stacked">
          <span>Description</span>
          <textarea rows={2} value={description} maxLength={4096} onInput={(event) => setDescription(event.currentTarget.value)} />
        </label>
      </Confirm>
    </Page>
  );
}

/** What the caller sees of a procedure: published as is, their draft of it, new (never published), or a staged removal. */
type DraftStateName = 'published' | 'draft' | 'new' | 'removal';
interface Row extends ProcedureListItem {
  state: DraftStateName;
}

/** The branch head, as `GET agent?branch_id=` shows it: the fields this screen uses. */
interface BranchHead {
  name: string;
  version_id: string;
  procedures?: Record<string, { procedure_id: string; name: string; type: ProcedureType; trigger?: string }>;
}

const STATE_LABELS: Record<DraftStateName, string> = {
  published: 'published',
  draft: 'your draft',
  new: 'new · unpublished draft',
  removal: 'removal staged',
};

function DraftState({ state }: { state: DraftStateName }) {
  return <span class={`badge${state === 'published' ? '' : ' badge-draft'}`}>{STATE_LABELS[state]}</span>;
}

interface EditorProps {
  agentId: string;
  branchId: string;
  procedureId: string;
  /** Its row (undefined: not on the list, e.g. removed). */
  procedure: Row | undefined;
  writable: boolean;
  onChanged: () => void;
  onGone: () => void;
}

/** One procedure: the caller's draft (else what is published), edited as a whole and saved as the caller's draft. */
function ProcedureEditor({ agentId, branchId, procedureId, procedure, writable, onChanged, onGone }: EditorProps) {
  const notices = useNotice();
  const draft = useApi<ProcedureDraft>(`${procedurePath(agentId, branchId, procedureId)}/draft`);
  const [fields, setFields] = useState<ProcedureFields>();
  const [confirm, setConfirm] = useState<'discard' | 'remove'>();
  const [saving, setSaving] = useState(false);
  useEffect(() => {
    if (draft.data) setFields({ name: draft.data.name, content: draft.data.content, type: draft.data.type, trigger: draft.data.trigger });
  }, [draft.data]);

  if (draft.error) return <ErrorPanel error={draft.error} title="This procedure could not be loaded" onRetry={draft.reload} />;
  if (!draft.data || !fields) return <Loading label="Loading the procedure…" />;
  const changed =
    fields.name !== draft.data.name || fields.content !== draft.data.content || fields.trigger !== draft.data.trigger;
  const neverPublished = procedure?.state === 'new';
  const jsonProblem = fields.type === 'deterministic' ? stepsJsonProblem(fields.content) : undefined;

  const save = async (event: SubmitEvent) => {
    event.preventDefault();
    setSaving(true);
    try {
      await saveProcedureDraft(agentId, branchId, procedureId, fields);
      notices.success(`Draft of “${fields.name || 'Untitled'}” saved`);
      draft.reload();
      onChanged();
    } catch (error) {
      notices.error(error, 'The draft was not saved');
    } finally {
      setSaving(false);
    }
  };
  const discard = async () => {
    await discardProcedureDraft(agentId, branchId, procedureId);
    notices.success(neverPublished ? `“${draft.data?.name}” discarded (it was never published)` : `Your draft of “${draft.data?.name}” discarded`);
    if (neverPublished) onGone();
    else {
      draft.reload();
      onChanged();
    }
  };
  const remove = async () => {
    await removeProcedure(agentId, branchId, procedureId);
    notices.success(neverPublished ? `“${draft.data?.name}” deleted` : `Removal of “${draft.data?.name}” staged: publish to apply it`);
    onGone();
  };

  return (
    <section class="card procedure-editor" aria-labelledby="procedure-heading">
      <h2 id="procedure-heading">
        {draft.data.name || 'Untitled'} {procedure && <DraftState state={procedure.state} />}
      </h2>
      <p class="muted small mono">{procedureId}</p>
      <form onSubmit={save}>
        <fieldset disabled={!writable}>
          <label class="stacked">
            <span>Name</span>
            <input type="text" value={fields.name} maxLength={200} onInput={(event) => setFields({ ...fields, name: event.currentTarget.value })} />
          </label>
          <label class="stacked">
            <span>Type</span>
            <input type="text" value={TYPES.find((type) => type.value === fields.type)?.label ?? fields.type} readOnly aria-describedby="type-note" />
          </label>
          <p id="type-note" class="muted small">
            A procedure's type cannot change.
          </p>
          <label class="stacked">
            <span>Trigger</span>
            <input type="text" value={fields.trigger} onInput={(event) => setFields({ ...fields, trigger: event.currentTarget.value })} />
          </label>
          {fields.type !== 'folder' && (
            <label class="stacked">
              <span>Content</span>
              <textarea
                class="mono"
                rows={14}
                maxLength={50000}
                value={fields.content}
                placeholder={fields.type === 'deterministic' ? '{"steps": [ … ]}' : 'Instructions, in markdown'}
                aria-invalid={jsonProblem !== undefined}
                aria-describedby={jsonProblem ? 'content-problem' : undefined}
                onInput={(event) => setFields({ ...fields, content: event.currentTarget.value })}
              />
            </label>
          )}
          {jsonProblem && (
            <p id="content-problem" class="field-error">
              {jsonProblem}
            </p>
          )}
        </fieldset>
        {writable && (
          <div class="actions">
            <Button type="submit" variant="primary" busy={saving} disabled={!changed}>
              Save draft
            </Button>
            <Button onClick={() => setConfirm('discard')} disabled={!procedure?.has_draft}>
              Discard draft
            </Button>
            <Button variant="quiet" class="danger-text" onClick={() => setConfirm('remove')}>
              Remove
            </Button>
            {changed && <span class="muted small">Unsaved changes</span>}
          </div>
        )}
      </form>
      <Confirm
        open={confirm !== undefined}
        title={confirm === 'remove' ? `Remove “${draft.data.name}”?` : `Discard your draft of “${draft.data.name}”?`}
        confirmLabel={confirm === 'remove' ? 'Remove' : 'Discard draft'}
        danger
        onConfirm={confirm === 'remove' ? remove : discard}
        onClose={() => setConfirm(undefined)}
      >
        <p>
          {confirm === 'remove'
            ? neverPublished
              ? 'It was never published: it is deleted at once.'
              : 'Its removal becomes your draft; the next publish removes it from the branch.'
            : neverPublished
              ? 'It was never published: discarding your draft deletes it.'
              : 'Your changes are lost; the published version stays.'}
        </p>
      </Confirm>
    </section>
  );
}

/** The server's message, with each procedure's validation errors by name when publishing found some. */
function describePublishError(error: unknown, procedures: ProcedureListItem[]): string {
  if (!(error instanceof ApiError)) return error instanceof Error ? error.message : String(error);
  const errors = (error.detail as { data?: { errors?: Record<string, { path?: string; message: string }[]> } } | undefined)?.data?.errors;
  if (!errors) return error.message;
  const lines = Object.entries(errors).map(([procedureId, list]) => {
    const name = procedures.find((procedure) => procedure.procedure_id === procedureId)?.name ?? procedureId;
    return `${name}: ${list.map((each) => each.message).join('; ')}`;
  });
  return `${error.message} ${lines.join(' · ')}`;
}

/** A deterministic procedure's content must be JSON (its steps are checked on publish): what is wrong with it, if anything. */
function stepsJsonProblem(content: string): string | undefined {
  if (content.trim() === '') return undefined;
  try {
    JSON.parse(content);
    return undefined;
  } catch (error) {
    return `Not valid JSON: ${error instanceof Error ? error.message : String(error)}. Publishing checks the steps.`;
  }
}
