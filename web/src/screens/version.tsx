import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';

import {
  type AgentConfig,
  agentConfigPath,
  type AgentVersion,
  type BranchList,
  branchesPath,
  diffPath,
  restoreVersion,
  type VersionDiff,
  versionPath,
} from '../api/history';
import { BranchFromVersion, type BranchTarget } from '../history/BranchFromVersion';
import { screenPaths } from '../history/paths';
import { canWrite, useSession } from '../session';
import { BranchOptions, Button, ErrorPanel, Loading, Page, RelativeTime, useNotice } from '../ui';
import { settled, useApi } from '../use-api';

const CONFIG_SECTIONS: [keyof AgentConfig, string][] = [
  ['conversation_config', 'Conversation config'],
  ['platform_settings', 'Platform settings'],
  ['workflow', 'Workflow'],
  ['procedures', 'Procedures'],
];

/**
 * `/agents/:agent_id/versions/:version_id`: a stored version's config and where it came from; compare
 * it, branch from it, or restore it onto a branch (`?onto=` names the branch; its own by default).
 */
export function VersionScreen({ agent_id: agentId, version_id: versionId }: { agent_id: string; version_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const { query, path, route } = useLocation();
  const metadata = useApi<AgentVersion>(versionPath(agentId, versionId));
  const config = useApi<AgentConfig>(agentConfigPath(agentId), { version_id: versionId });
  const branches = useApi<BranchList>(branchesPath(agentId), { include_archived: true, limit: 100 });
  const [branchFrom, setBranchFrom] = useState<BranchTarget>();
  const writable = session ? canWrite(session.who.role) : false;

  // The version is labelled by its branch's name: shown once the branches are known, never an id first.
  const version = settled(branches) ? metadata.data : undefined;
  const branchList = branches.data?.results ?? [];
  const branchName = (branchId: string) => branchList.find((branch) => branch.id === branchId)?.name ?? branchId;
  const ontoId = query.onto ?? version?.branch_id;
  const onto = branchList.find((branch) => branch.id === ontoId);
  // Restoring what the branch already has makes no version: compare with its head first.
  const againstHead = useApi<VersionDiff>(onto ? diffPath(agentId) : undefined, { from_version_id: onto?.head_version_id, to_version_id: versionId });
  const label = version ? `#${version.seq_no_in_branch} on ${branchName(version.branch_id)}` : versionId;
  const identical = againstHead.data?.changes.length === 0;
  const isHead = onto?.head_version_id === versionId;

  const restore = async () => {
    if (!onto) return;
    try {
      const restored = await restoreVersion(agentId, onto.id, versionId);
      notices.success(`Restored ${label} onto “${onto.name}” as a new version (${restored.version_id ?? 'its new head'})`);
      branches.reload();
    } catch (error) {
      notices.error(error, 'The version was not restored');
    }
  };

  const parentId = version?.parents.in_branch_parent_id ?? version?.parents.out_of_branch_parent_id ?? undefined;
  const restoreReason = !onto
    ? 'Pick a branch to restore onto.'
    : onto.is_archived
      ? `“${onto.name}” is archived.`
      : againstHead.loading && !againstHead.data
        ? 'Comparing with the branch head…'
        : identical
          ? isHead
            ? `This is the head of “${onto.name}”: restoring it would change nothing.`
            : `The head of “${onto.name}” already has this config: restoring it would change nothing.`
          : undefined;

  return (
    <Page
      title={version ? `Version ${label}` : 'Version'}
      subtitle={
        <>
          <a href={screenPaths.agent(agentId)}>Branches</a> · <a href={screenPaths.history(agentId)}>History</a>
        </>
      }
      actions={
        writable && version ? (
          <Button onClick={() => setBranchFrom({ versionId, label })} aria-label={`Branch from ${label}`}>
            Branch from here
          </Button>
        ) : undefined
      }
    >
      {metadata.error && <ErrorPanel error={metadata.error} title="The version could not be loaded" onRetry={metadata.reload} />}
      {!version && !metadata.error && <Loading label="Loading the version…" />}
      {version && (
        <div class="card version-facts">
          <dl class="facts">
            <dt>Description</dt>
            <dd>{version.version_description || <span class="muted">No description</span>}</dd>
            <dt>Branch</dt>
            <dd>
              {branchName(version.branch_id)} · #{version.seq_no_in_branch}
            </dd>
            <dt>Committed</dt>
            <dd>
              <RelativeTime seconds={version.time_committed_secs} /> by {version.access_info?.creator_name ?? 'an unknown author'}
            </dd>
            <dt>Parents</dt>
            <dd>
              {[version.parents.in_branch_parent_id, version.parents.out_of_branch_parent_id, version.parents.merged_from_version_id]
                .filter((id): id is string => Boolean(id))
                .map((id, index) => (
                  <span key={id}>
                    {index > 0 && ', '}
                    <a class="mono" href={screenPaths.version(agentId, id)}>
                      {id}
                    </a>{' '}
                    (<a href={screenPaths.diff(agentId, id, versionId)}>diff</a>)
                  </span>
                ))}
              {!parentId && <span class="muted">none (the agent's first version)</span>}
            </dd>
            <dt>Id</dt>
            <dd class="mono">{version.id}</dd>
          </dl>
        </div>
      )}

      {version && writable && branches.data && (
        <section class="card restore" aria-labelledby="restore-title">
          <h2 id="restore-title">Restore this version</h2>
          <p class="muted small">Commits a new version on the branch with this version's config. Nothing is lost: the versions in between stay in the history.</p>
          <div class="toolbar">
            <label>
              <span>Onto branch</span>
              <select
                value={ontoId}
                onChange={(event) => {
                  const params = new URLSearchParams({ onto: event.currentTarget.value });
                  route(`${path}?${params.toString()}`, true);
                }}
              >
                <BranchOptions branches={branchList.filter((branch) => !branch.is_archived || branch.id === ontoId)} />
              </select>
            </label>
            <Button variant="primary" disabled={restoreReason !== undefined} aria-describedby="restore-reason" onClick={restore}>
              Restore onto {onto?.name ?? 'branch'}
            </Button>
            {onto && !isHead && (
              <a href={screenPaths.diff(agentId, onto.head_version_id, versionId)}>What restoring changes</a>
            )}
          </div>
          <p id="restore-reason" class="muted small" role="status">
            {againstHead.error ? `Could not compare with the branch head: ${againstHead.error.message}` : (restoreReason ?? `Restoring changes ${fieldCount(againstHead.data?.changes.length ?? 0)} of “${onto?.name ?? ''}”.`)}
          </p>
        </section>
      )}

      {config.error && <ErrorPanel error={config.error} title="The config could not be loaded" onRetry={config.reload} />}
      {!config.data && config.loading && <Loading label="Loading the config…" />}
      {config.data && (
        <section aria-labelledby="config-title">
          <h2 id="config-title">Config</h2>
          <p class="small">
            Name <strong>{config.data.name || 'Untitled'}</strong>
            {config.data.tags && config.data.tags.length > 0 && <> · tags {config.data.tags.join(', ')}</>}
          </p>
          {CONFIG_SECTIONS.filter(([key]) => config.data![key] !== undefined).map(([key, title]) => (
            <details key={key} class="card config-section" open={key === 'conversation_config'}>
              <summary>{title}</summary>
              <pre class="value">{JSON.stringify(config.data![key], null, 2)}</pre>
            </details>
          ))}
        </section>
      )}

      <BranchFromVersion agentId={agentId} target={branchFrom} onClose={() => setBranchFrom(undefined)} onCreated={() => route(screenPaths.agent(agentId))} />
    </Page>
  );
}

function fieldCount(count: number): string {
  return `${count} ${count === 1 ? 'field' : 'fields'}`;
}
