import { useLocation } from 'preact-iso';
import { useEffect, useMemo, useState } from 'preact/hooks';

import { api, ApiError } from '../api';
import {
  type AgentConfig,
  type Branch,
  editableOf,
  type FieldConflict,
  getBranchHead,
  type Json,
  merge,
  type MergeResult,
  paths,
  type Preview,
  rebase,
  type RebaseResult,
  type Resolution,
} from '../api/edit';
import { canWrite, useSession } from '../session';
import { Button, describeError, ErrorPanel, Loading, Page, useNotice } from '../ui';
import { useApi } from '../use-api';
import { ChangesTable } from './changes';
import { configChanges } from '../config-patch';
import { shown } from './edit-model';

type Choice = 'default' | 'source' | 'target' | 'value';
interface ConflictChoice {
  choice: Choice;
  /** The typed value, as text (JSON unless the conflict is between strings). */
  text: string;
}

/** A conflict between strings takes typed text as it is; anything else is read as JSON. */
function typedValue(conflict: FieldConflict, text: string): { value: Json } | { error: string } {
  const strings = [conflict.source_value, conflict.target_value].every((value) => typeof value === 'string' || value === undefined);
  if (strings) return { value: text };
  try {
    return { value: JSON.parse(text) as Json };
  } catch {
    return { error: 'Type a JSON value (a number, true/false, "text" in quotes, an object…).' };
  }
}

function resolutionsOf(conflicts: FieldConflict[], choices: Record<string, ConflictChoice>): { resolutions: Record<string, Resolution>; invalid: string[] } {
  const resolutions: Record<string, Resolution> = {};
  const invalid: string[] = [];
  for (const conflict of conflicts) {
    const chosen = choices[conflict.path];
    if (!chosen || chosen.choice === 'default') continue;
    if (chosen.choice !== 'value') {
      resolutions[conflict.path] = chosen.choice;
      continue;
    }
    const typed = typedValue(conflict, chosen.text);
    if ('error' in typed) invalid.push(conflict.path);
    else resolutions[conflict.path] = typed;
  }
  return { resolutions, invalid };
}

const agentLink = (agentId: string) => `/agents/${encodeURIComponent(agentId)}`;
/** The history screen's page of a version. */
const versionLink = (agentId: string, versionId: string) => `${agentLink(agentId)}/versions/${encodeURIComponent(versionId)}`;

/** What the preview would change on the head it lands on, for the table. */
function changesOn(head: AgentConfig | undefined, preview: Preview | undefined) {
  if (!head || !preview) return [];
  const before = editableOf(head) as unknown as Json;
  const after = editableOf(preview) as unknown as Json;
  return configChanges(before, after);
}

/**
 * `/agents/:agent_id/branches/:branch_id/merge?into=<target>`: the merge preview, each conflict with
 * its base, source and target values and a choice (source, target or a typed value → `resolutions`),
 * `force`, archiving the source, what will change on the target, then the merge and its new version.
 * The target and the chosen options other than typed values are in the URL.
 */
export function MergeScreen({ agent_id: agentId, branch_id: sourceId }: { agent_id: string; branch_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const { query, path, route } = useLocation();
  const writable = session ? canWrite(session.who.role) : false;
  const branches = useApi<{ results: Branch[] }>(paths.branches(agentId), { include_archived: true });
  const agent = useApi<AgentConfig>(paths.agent(agentId));
  const source = branches.data?.results.find((each) => each.id === sourceId);
  const targets = (branches.data?.results ?? []).filter((each) => each.id !== sourceId && !each.is_archived);
  const targetId = query.into;
  const target = targets.find((each) => each.id === targetId);
  const force = query.force === 'true';
  const archiveSource = query.archive !== 'false';

  const [choices, setChoices] = useState<Record<string, ConflictChoice>>({});
  const [conflicts, setConflicts] = useState<FieldConflict[]>();
  const [preview, setPreview] = useState<Preview>();
  const [targetHead, setTargetHead] = useState<AgentConfig>();
  const [previewError, setPreviewError] = useState<unknown>();
  const [previewing, setPreviewing] = useState(false);
  const [result, setResult] = useState<MergeResult>();
  const [refusal, setRefusal] = useState<string>();
  /** Bumped to preview again (the target moved under the preview). */
  const [refresh, setRefresh] = useState(0);

  const show = (next: { into?: string; force?: boolean; archive?: boolean }) => {
    const params = new URLSearchParams();
    const into = next.into ?? targetId;
    if (into) params.set('into', into);
    if (next.force ?? force) params.set('force', 'true');
    if (!(next.archive ?? archiveSource)) params.set('archive', 'false');
    route(`${path}?${params.toString()}`, true);
  };

  // No target in the URL: main is the usual one (for main itself, the first other branch).
  useEffect(() => {
    const mainId = agent.data?.main_branch_id;
    if (targetId || !mainId || !branches.data) return;
    const fallback = mainId !== sourceId ? mainId : targets[0]?.id;
    if (fallback) show({ into: fallback });
  }, [targetId, agent.data, branches.data]);

  // The conflicts come from the plain preview (no resolutions, no force), so every one stays listed.
  useEffect(() => {
    if (!targetId) return;
    setConflicts(undefined);
    setChoices({});
    setResult(undefined);
    const controller = new AbortController();
    api<Preview>('GET', paths.mergePreview(agentId, sourceId), undefined, { query: { target_branch_id: targetId }, signal: controller.signal }).then(
      (plain) => setConflicts(plain.conflicts ?? []),
      (error: unknown) => {
        if (!controller.signal.aborted) setPreviewError(error);
      },
    );
    return () => controller.abort();
  }, [agentId, sourceId, targetId]);

  const { resolutions, invalid } = useMemo(() => resolutionsOf(conflicts ?? [], choices), [conflicts, choices]);
  const resolutionsKey = JSON.stringify(resolutions);

  // The preview of exactly what the merge would write: with `force` and the chosen resolutions.
  useEffect(() => {
    if (!targetId || conflicts === undefined) return;
    const controller = new AbortController();
    setPreviewing(true);
    setPreviewError(undefined);
    Promise.all([
      api<Preview>('GET', paths.mergePreview(agentId, sourceId), undefined, {
        query: { target_branch_id: targetId, force, resolutions: Object.keys(resolutions).length > 0 ? resolutionsKey : undefined },
        signal: controller.signal,
      }),
      getBranchHead(agentId, targetId),
    ]).then(
      ([next, head]) => {
        setPreview(next);
        setTargetHead(head);
        setPreviewing(false);
      },
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setPreviewError(error);
        setPreviewing(false);
      },
    );
    return () => controller.abort();
  }, [agentId, sourceId, targetId, force, resolutionsKey, conflicts, refresh]);

  const changes = useMemo(() => changesOn(targetHead, preview), [targetHead, preview]);

  const runMerge = async () => {
    if (!targetId || !preview) return;
    setRefusal(undefined);
    try {
      const merged = await merge(agentId, sourceId, targetId, { force, archiveSource, resolutions, expectedTargetVersionId: preview.target_version_id });
      setResult(merged);
      notices.success(`Merged ${source?.name ?? 'the branch'} into ${target?.name ?? 'the target'}: version ${merged.version_id}.`);
      branches.reload();
    } catch (error) {
      setRefusal(describeError(error));
      notices.error(error, 'The merge was refused');
      // The target moved since the preview: preview again, so what is shown is what would merge.
      if (error instanceof ApiError && error.code === 'concurrent_modification') setRefresh((count) => count + 1);
    }
  };

  const choose = (conflict: FieldConflict, next: Partial<ConflictChoice>) =>
    setChoices((current) => ({ ...current, [conflict.path]: { ...(current[conflict.path] ?? { choice: 'default', text: '' }), ...next } }));

  const title = `Merge ${source?.name ?? 'branch'}${target ? ` into ${target.name}` : ''}`;
  return (
    <Page title={title} subtitle={<a href={agentLink(agentId)}>Back to the agent</a>}>
      {branches.error && <ErrorPanel error={branches.error} title="The branches could not be loaded" onRetry={branches.reload} />}
      <div class="toolbar">
        <form class="filters" onSubmit={(event) => event.preventDefault()}>
          <label>
            <span>Into</span>
            <select name="into" value={targetId ?? ''} onChange={(event) => show({ into: event.currentTarget.value })}>
              {targets.map((each) => (
                <option key={each.id} value={each.id}>
                  {each.name}
                </option>
              ))}
            </select>
          </label>
          <label class="checkbox">
            <input type="checkbox" name="force" checked={force} onChange={(event) => show({ force: event.currentTarget.checked })} />
            <span>Force: the source wins every conflict not settled below</span>
          </label>
          <label class="checkbox">
            <input type="checkbox" name="archive" checked={archiveSource} onChange={(event) => show({ archive: event.currentTarget.checked })} />
            <span>Archive the source after merging (its live traffic moves to the target)</span>
          </label>
        </form>
      </div>

      {branches.data && targets.length === 0 && <p class="notice-inline">There is no other live branch to merge into.</p>}
      {result && (
        <section class="card result" role="status" aria-labelledby="merge-result">
          <h2 id="merge-result">Merged</h2>
          <p>
            New version <a class="mono" href={versionLink(agentId, result.version_id)}>{result.version_id}</a> on {target?.name ?? 'the target'}
            {result.source_archived ? '; the source is archived' : ''}
            {result.moved_traffic_percentage > 0 ? `; ${result.moved_traffic_percentage}% of live traffic moved to the target` : ''}.
          </p>
          <p>
            <a href={agentLink(agentId)}>Back to the agent</a>
          </p>
        </section>
      )}

      {previewError !== undefined && <ErrorPanel error={previewError} title="The merge cannot be previewed" />}
      {!previewError && (conflicts === undefined || (!preview && previewing)) && targetId && <Loading label="Previewing the merge…" />}

      {conflicts !== undefined && !result && (
        <section aria-labelledby="conflicts-title" class="section">
          <h2 id="conflicts-title">
            Conflicts <span class="muted small">({conflicts.length})</span>
          </h2>
          {conflicts.length === 0 ? (
            <p class="muted">No field was changed on both sides.</p>
          ) : (
            <ol class="conflicts">
              {conflicts.map((conflict) => (
                <ConflictCard
                  key={conflict.path}
                  conflict={conflict}
                  chosen={choices[conflict.path] ?? { choice: 'default', text: '' }}
                  invalid={invalid.includes(conflict.path)}
                  onChoose={(next) => choose(conflict, next)}
                />
              ))}
            </ol>
          )}
        </section>
      )}

      {preview && !result && (
        <section aria-labelledby="changes-title" class="section" aria-busy={previewing}>
          <h2 id="changes-title">What changes on {target?.name ?? 'the target'}</h2>
          {preview.source_identical_to_target && (
            <p class="notice-inline notice-inline-warning">
              As previewed, this merge would change nothing on the target, so the server will refuse it. Choose the source's value for a conflict, or force.
            </p>
          )}
          {(preview.overridden_fields ?? []).length > 0 && (
            <p class="muted small">
              Changed on both sides (one value replaces the other): <span class="mono">{(preview.overridden_fields ?? []).join(', ')}</span>
            </p>
          )}
          <ChangesTable caption="What the merge changes on the target" rows={changes} beforeLabel="Target now" afterLabel="After the merge" empty="The merge changes nothing on the target." />
          {writable && (
            <div class="actions section">
              <Button variant="primary" onClick={runMerge} disabled={previewing || invalid.length > 0}>
                Merge into {target?.name ?? 'target'}
              </Button>
              <a href={`${agentLink(agentId)}/proposals?source=${encodeURIComponent(sourceId)}&target=${encodeURIComponent(targetId ?? '')}`}>Propose it for review instead</a>
              {invalid.length > 0 && <span class="field-error">Fix the typed values first.</span>}
            </div>
          )}
          {refusal && (
            <p class="field-error refusal" role="alert">
              Not merged: {refusal}
            </p>
          )}
        </section>
      )}
    </Page>
  );
}

function ConflictCard({ conflict, chosen, invalid, onChoose }: { conflict: FieldConflict; chosen: ConflictChoice; invalid: boolean; onChoose: (next: Partial<ConflictChoice>) => void }) {
  const name = `resolution-${conflict.path}`;
  const options: [Choice, string][] = [
    ['default', 'Server rule (the newer side wins)'],
    ['source', 'Source'],
    ['target', 'Target'],
    ['value', 'Type a value'],
  ];
  return (
    <li class="card conflict-card">
      <fieldset>
        <legend>
          <span class="mono">{conflict.path}</span> <span class="muted small">{conflict.section}</span>
        </legend>
        <dl class="conflict-values">
          <div>
            <dt>Base</dt>
            <dd>
              <pre class="edit-value">{shown(conflict.base_value)}</pre>
            </dd>
          </div>
          <div>
            <dt>Source</dt>
            <dd>
              <pre class="edit-value">{shown(conflict.source_value)}</pre>
            </dd>
          </div>
          <div>
            <dt>Target</dt>
            <dd>
              <pre class="edit-value">{shown(conflict.target_value)}</pre>
            </dd>
          </div>
        </dl>
        <div class="choices" role="radiogroup" aria-label={`Resolution of ${conflict.path}`}>
          {options.map(([value, label]) => (
            <label key={value} class="checkbox">
              <input type="radio" name={name} value={value} checked={chosen.choice === value} onChange={() => onChoose({ choice: value })} />
              <span>{label}</span>
            </label>
          ))}
        </div>
        {chosen.choice === 'value' && (
          <label class="typed-value">
            <span>Value for {conflict.path}</span>
            <textarea
              rows={3}
              value={chosen.text}
              aria-invalid={invalid}
              onInput={(event) => onChoose({ text: event.currentTarget.value })}
            />
            {invalid && <span class="field-error">Type a JSON value (a number, true/false, "text" in quotes, an object…).</span>}
          </label>
        )}
      </fieldset>
    </li>
  );
}

/** `/agents/:agent_id/branches/:branch_id/rebase`: main's changes brought onto the branch (the branch wins conflicts). */
export function RebaseScreen({ agent_id: agentId, branch_id: branchId }: { agent_id: string; branch_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const writable = session ? canWrite(session.who.role) : false;
  const branches = useApi<{ results: Branch[] }>(paths.branches(agentId), { include_archived: true });
  const branch = branches.data?.results.find((each) => each.id === branchId);
  const preview = useApi<Preview>(paths.rebasePreview(agentId, branchId));
  const [head, setHead] = useState<AgentConfig>();
  const [result, setResult] = useState<RebaseResult>();
  useEffect(() => {
    getBranchHead(agentId, branchId).then(setHead, () => undefined);
  }, [agentId, branchId, result]);
  const changes = useMemo(() => changesOn(head, preview.data), [head, preview.data]);

  const runRebase = async () => {
    try {
      const rebased = await rebase(agentId, branchId);
      setResult(rebased);
      notices.success(`Rebased ${branch?.name ?? 'the branch'} onto main: version ${rebased.version_id}.`);
    } catch (error) {
      notices.error(error, 'The rebase was refused');
    }
  };

  const conflicts = preview.data?.conflicts ?? [];
  return (
    <Page title={`Rebase ${branch?.name ?? 'branch'} onto main`} subtitle={<a href={agentLink(agentId)}>Back to the agent</a>}>
      {result && (
        <section class="card result" role="status" aria-labelledby="rebase-result">
          <h2 id="rebase-result">Rebased</h2>
          <p>
            New version <a class="mono" href={versionLink(agentId, result.version_id)}>{result.version_id}</a> on {branch?.name ?? 'the branch'}, on top of main's{' '}
            <span class="mono">{result.rebased_onto_version_id}</span>.
          </p>
          <p>
            <a href={`${agentLink(agentId)}/branches/${encodeURIComponent(branchId)}/edit`}>Edit the branch</a>
          </p>
        </section>
      )}
      {preview.error && <ErrorPanel error={preview.error} title="The rebase cannot be previewed" onRetry={preview.reload} />}
      {!preview.data && preview.loading && <Loading label="Previewing the rebase…" />}
      {preview.data && !result && (
        <>
          <section class="section" aria-labelledby="conflicts-title">
            <h2 id="conflicts-title">
              Conflicts <span class="muted small">({conflicts.length}; the branch keeps its value)</span>
            </h2>
            {conflicts.length === 0 ? (
              <p class="muted">No field was changed on both sides.</p>
            ) : (
              <ChangesTable
                caption="Conflicts: main's value and the branch's, which is kept"
                rows={conflicts.map((conflict) => ({ path: conflict.path, before: conflict.target_value, after: conflict.source_value }))}
                beforeLabel="Main"
                afterLabel="Kept (the branch)"
              />
            )}
          </section>
          <section class="section" aria-labelledby="changes-title">
            <h2 id="changes-title">What changes on {branch?.name ?? 'the branch'}</h2>
            {preview.data.source_identical_to_target && <p class="notice-inline notice-inline-warning">The branch is up to date with main: the server will refuse this rebase.</p>}
            <ChangesTable caption="What the rebase changes on the branch" rows={changes} beforeLabel="Branch now" afterLabel="After the rebase" empty="The rebase changes nothing on the branch." />
            {writable && (
              <div class="actions section">
                <Button variant="primary" onClick={runRebase}>
                  Rebase onto main
                </Button>
              </div>
            )}
          </section>
        </>
      )}
    </Page>
  );
}
