import { useLocation } from 'preact-iso';
import { useState } from 'preact/hooks';

import { type AgentConfig, agentConfigPath, type BranchList, branchesPath, type BranchSummary, createBranch, updateBranch } from '../api/history';
import { screenPaths } from '../history/paths';
import { canWrite, useSession } from '../session';
import { BranchOptions, Button, type Column, ErrorPanel, Loading, Page, RelativeTime, Table, useNotice } from '../ui';
import { useApi } from '../use-api';

/**
 * `/agents/:agent_id`: the agent's branches (live share, head, ahead/behind main, the caller's draft,
 * protection), with Compare, Merge, Rebase, Archive and Protect on each row; `?archived=1` shows the
 * archived branches too.
 */
export function AgentScreen({ agent_id: agentId }: { agent_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const { query, path, route } = useLocation();
  const showArchived = query.archived === '1';
  const agent = useApi<AgentConfig>(agentConfigPath(agentId));
  const branches = useApi<BranchList>(branchesPath(agentId), { include_archived: showArchived, include_commit_status: true, limit: 100 });
  const role = session?.who.role;
  const writable = role ? canWrite(role) : false;
  const isAdmin = role === 'admin';
  const mainId = agent.data?.main_branch_id ?? undefined;
  const rows = [...(branches.data?.results ?? [])].sort((a, b) => Number(b.id === mainId) - Number(a.id === mainId));
  const main = rows.find((branch) => branch.id === mainId);

  const [newName, setNewName] = useState('');
  const [fromBranchId, setFromBranchId] = useState('');
  const [creating, setCreating] = useState(false);

  const create = async (event: SubmitEvent) => {
    event.preventDefault();
    const source = rows.find((branch) => branch.id === (fromBranchId || mainId));
    if (!source) return;
    setCreating(true);
    try {
      await createBranch(agentId, { parent_version_id: source.head_version_id, name: newName.trim(), description: '' });
      notices.success(`Branch “${newName.trim()}” created from the head of “${source.name}”`);
      setNewName('');
      branches.reload();
    } catch (error) {
      notices.error(error, 'The branch was not created');
    } finally {
      setCreating(false);
    }
  };
  const setArchived = async (branch: BranchSummary, archived: boolean) => {
    try {
      await updateBranch(agentId, branch.id, { is_archived: archived });
      notices.success(`Branch “${branch.name}” ${archived ? 'archived' : 'unarchived'}`);
      branches.reload();
    } catch (error) {
      notices.error(error, `“${branch.name}” was not ${archived ? 'archived' : 'unarchived'}`);
    }
  };
  const setProtected = async (branch: BranchSummary, adminOnly: boolean) => {
    try {
      await updateBranch(agentId, branch.id, { protection_status: adminOnly ? 'admin_perms_required' : 'writer_perms_required' });
      notices.success(`Branch “${branch.name}” ${adminOnly ? 'protected: only admins can change it' : 'unprotected: editors can change it'}`);
      branches.reload();
    } catch (error) {
      notices.error(error, `The protection of “${branch.name}” was not changed`);
    }
  };

  const columns: Column<BranchSummary>[] = [
    {
      header: 'Branch',
      cell: (branch) => (
        <>
          <strong>{branch.name}</strong>
          {branch.id === mainId && <span class="badge">main</span>}
          {branch.is_archived && <span class="badge">archived</span>}
          {branch.description && <div class="muted small">{branch.description}</div>}
        </>
      ),
    },
    { header: 'Live', class: 'num', cell: (branch) => <span data-cell="live">{formatShare(branch.current_live_percentage)}</span> },
    {
      header: 'Head',
      class: 'nowrap',
      cell: (branch) => (
        <>
          <a href={screenPaths.version(agentId, branch.head_version_id)}>#{branch.head_seq_no_in_branch}</a>{' '}
          <span class="muted small">
            <RelativeTime seconds={branch.last_committed_at} />
          </span>
        </>
      ),
    },
    {
      header: 'vs main',
      class: 'nowrap',
      cell: (branch) =>
        branch.id === mainId ? (
          <span class="muted">—</span>
        ) : (
          <span data-cell="ahead-behind" title={`${branch.commits_ahead ?? '?'} commits ahead of main, ${branch.commits_behind ?? '?'} behind`}>
            {branch.commits_ahead ?? '?'} ahead · {branch.commits_behind ?? '?'} behind
          </span>
        ),
    },
    {
      header: 'Your draft',
      class: 'nowrap',
      cell: (branch) => (
        <span data-cell="draft">
          {!branch.draft_exists ? (
            <span class="muted">none</span>
          ) : branch.draft_is_behind_tip ? (
            <span class="badge badge-warning" title="A version landed on the branch after your draft was saved">
              behind the head
            </span>
          ) : (
            <span class="badge">up to date</span>
          )}
        </span>
      ),
    },
    {
      header: 'Protection',
      class: 'nowrap',
      cell: (branch) => <span data-cell="protection">{branch.protection_status === 'admin_perms_required' ? 'admins only' : 'editors'}</span>,
    },
    {
      header: <span class="visually-hidden">Links</span>,
      class: 'actions',
      cell: (branch) => (
        <span class="row-links">
          <a href={screenPaths.branch(agentId, branch.id, 'edit')} aria-label={`Edit ${branch.name}`}>
            Edit
          </a>
          {branch.id !== mainId && main && (
            <a href={screenPaths.diff(agentId, main.head_version_id, branch.head_version_id)} aria-label={`Compare ${branch.name} with main`}>
              Compare
            </a>
          )}
          {branch.id !== mainId && mainId && (
            <a href={screenPaths.merge(agentId, branch.id, mainId)} aria-label={`Merge ${branch.name} into main`}>
              Merge
            </a>
          )}
          {branch.id !== mainId && (
            <a href={screenPaths.branch(agentId, branch.id, 'rebase')} aria-label={`Rebase ${branch.name} onto main`}>
              Rebase
            </a>
          )}
          <a href={screenPaths.branch(agentId, branch.id, 'procedures')} aria-label={`Procedures of ${branch.name}`}>
            Procedures
          </a>
        </span>
      ),
    },
    ...(writable
      ? [
          {
            header: <span class="visually-hidden">Actions</span>,
            class: 'actions',
            cell: (branch: BranchSummary) => {
              const archiveReason =
                branch.id === mainId ? 'Main cannot be archived.' : !branch.is_archived && branch.current_live_percentage > 0 ? 'It serves live traffic: deploy it to 0% first.' : undefined;
              const adminOnly = branch.protection_status === 'admin_perms_required';
              return (
                <>
                  <Button
                    variant="quiet"
                    disabled={archiveReason !== undefined}
                    title={archiveReason}
                    aria-label={`${branch.is_archived ? 'Unarchive' : 'Archive'} ${branch.name}${archiveReason ? ` (${archiveReason})` : ''}`}
                    onClick={() => setArchived(branch, !branch.is_archived)}
                  >
                    {branch.is_archived ? 'Unarchive' : 'Archive'}
                  </Button>
                  <Button
                    variant="quiet"
                    disabled={!isAdmin}
                    title={isAdmin ? undefined : 'Only an admin can change protection.'}
                    aria-label={`${adminOnly ? 'Unprotect' : 'Protect'} ${branch.name}${isAdmin ? '' : ' (only an admin can change protection)'}`}
                    onClick={() => setProtected(branch, !adminOnly)}
                  >
                    {adminOnly ? 'Unprotect' : 'Protect'}
                  </Button>
                </>
              );
            },
          },
        ]
      : []),
  ];

  const toggleArchived = () => route(showArchived ? path : `${path}?archived=1`);
  return (
    <Page
      title={agent.data ? agent.data.name || 'Untitled' : 'Agent'}
      subtitle={<span class="mono">{agentId}</span>}
      actions={
        <>
          <a class="button" href={screenPaths.history(agentId)}>
            History
          </a>
          <a class="button" href={screenPaths.proposals(agentId)}>
            Proposals
          </a>
          <a class="button" href={screenPaths.results(agentId)}>
            Results
          </a>
          <a class="button button-primary" href={screenPaths.deploy(agentId)}>
            Deploy
          </a>
        </>
      }
    >
      {agent.error && <ErrorPanel error={agent.error} title="The agent could not be loaded" onRetry={agent.reload} />}
      <div class="toolbar">
        <label class="checkbox">
          <input type="checkbox" checked={showArchived} onChange={toggleArchived} />
          <span>Show archived branches</span>
        </label>
        {writable && agent.data && branches.data && (
          <form class="create" onSubmit={create}>
            <label>
              <span>New branch</span>
              <input type="text" name="branch-name" value={newName} placeholder="Name" required maxLength={140} onInput={(event) => setNewName(event.currentTarget.value)} />
            </label>
            <label>
              <span>From the head of</span>
              <select name="from-branch" value={fromBranchId || mainId} onChange={(event) => setFromBranchId(event.currentTarget.value)}>
                <BranchOptions branches={rows.filter((branch) => !branch.is_archived)} />
              </select>
            </label>
            <Button type="submit" variant="primary" busy={creating}>
              Create branch
            </Button>
          </form>
        )}
      </div>
      {branches.error && <ErrorPanel error={branches.error} title="The branches could not be loaded" onRetry={branches.reload} />}
      {!branches.data && branches.loading && <Loading label="Loading branches…" />}
      {branches.data && (
        <div aria-busy={branches.loading}>
          <Table caption="Branches" columns={columns} rows={rows} rowKey={(branch) => branch.id} empty="No branches." />
          {writable && !isAdmin && <p class="muted small">Protect and Unprotect need an admin; protected branches can only be changed by admins.</p>}
          <p class="muted small">Ahead and behind count commits against main. “Your draft” is your own unsaved work on the branch; it is behind when a version landed after you saved it.</p>
        </div>
      )}
    </Page>
  );
}

function formatShare(percentage: number): string {
  return `${Number.isInteger(percentage) ? percentage : percentage.toFixed(1)}%`;
}
