import { useLocation } from 'preact-iso';
import { useEffect, useMemo, useState } from 'preact/hooks';

import { api } from '../api';
import {
  type AgentConfig,
  type Branch,
  closeProposal,
  commentOnProposal,
  createProposal,
  editableOf,
  getBranchHead,
  type Json,
  mergeProposal,
  paths,
  type Preview,
  type Proposal,
  type ProposalPage,
  reviewProposal,
  WORKSPACE_USERS_PATH,
  type WorkspaceUser,
} from '../api/edit';
import { canWrite, type Session, useSession } from '../session';
import { Button, type Column, Confirm, describeError, ErrorPanel, Loading, Page, RelativeTime, Table, useNotice } from '../ui';
import { settled, useApi } from '../use-api';
import { ChangesTable } from './changes';
import { configChanges } from '../config-patch';

const STATES = ['open', 'merged', 'closed'] as const;
const agentLink = (agentId: string) => `/agents/${encodeURIComponent(agentId)}`;
const proposalLink = (agentId: string, proposalId: string) => `${agentLink(agentId)}/proposals/${encodeURIComponent(proposalId)}`;

type Who = (userId: string) => string;

/** Names for user ids (the workspace's users); an id the list lacks is shown as it is. */
function useNames(session: Session | undefined): { users: WorkspaceUser[]; usersLoaded: boolean; who: Who } {
  const users = useApi<{ users: WorkspaceUser[] }>(WORKSPACE_USERS_PATH);
  const list = users.data?.users ?? [];
  const who = (userId: string) => {
    const name = list.find((user) => user.user_id === userId)?.name ?? userId;
    return session && userId === session.who.user_id ? `${name} (you)` : name;
  };
  // An answer or an error: either way the list is as complete as it will get.
  return { users: list, usersLoaded: settled(users), who };
}

function branchName(branches: Branch[] | undefined, id: string): string {
  return branches?.find((each) => each.id === id)?.name ?? id;
}

function stateOf(proposal: Proposal): string {
  if (proposal.outcome.status !== 'open') return proposal.outcome.status;
  const current = proposal.reviews.filter((review) => !review.is_stale);
  if (current.some((review) => review.state === 'changes_requested')) return 'open · changes requested';
  if (current.some((review) => review.state === 'approved')) return 'open · approved';
  return 'open · awaiting review';
}

/** `/agents/:agent_id/proposals?state=`: the agent's merge proposals (filtered by state) and a form to open one. */
export function ProposalsScreen({ agent_id: agentId }: { agent_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const { query, path, route } = useLocation();
  const state = STATES.find((each) => each === query.state);
  const writable = session ? canWrite(session.who.role) : false;
  const cursor = query.cursor;
  const proposals = useApi<ProposalPage>(paths.proposals(agentId), { status: state, page_size: 50, cursor });
  const pageLink = (next: string | undefined) => {
    const params = new URLSearchParams();
    if (state) params.set('state', state);
    if (next) params.set('cursor', next);
    const search = params.toString();
    return search ? `${path}?${search}` : path;
  };
  const branches = useApi<{ results: Branch[] }>(paths.branches(agentId), { include_archived: true });
  const live = (branches.data?.results ?? []).filter((each) => !each.is_archived);

  // `?source=&target=` (from the merge screen's "Propose instead") fills the form in.
  const [sourceId, setSourceId] = useState(query.source ?? '');
  const [targetId, setTargetId] = useState(query.target ?? '');
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [reviewers, setReviewers] = useState<string[]>([]);
  const { users, usersLoaded, who } = useNames(session);
  const [creating, setCreating] = useState(false);
  const [createError, setCreateError] = useState<string>();

  const create = async (event: SubmitEvent) => {
    event.preventDefault();
    setCreating(true);
    setCreateError(undefined);
    try {
      const created = await createProposal(agentId, {
        source_branch_id: sourceId,
        target_branch_id: targetId,
        title: title.trim(),
        description: description.trim(),
        requested_reviewer_user_ids: reviewers,
      });
      notices.success(`Proposal “${title.trim()}” opened.`);
      route(proposalLink(agentId, created.created_merge_proposal_id));
    } catch (error) {
      setCreateError(describeError(error));
      notices.error(error, 'The proposal was not opened');
    } finally {
      setCreating(false);
    }
  };

  const columns: Column<Proposal>[] = [
    {
      header: 'Title',
      cell: (proposal) => (
        <>
          <a href={proposalLink(agentId, proposal.id)}>{proposal.title || 'Untitled'}</a>
          <div class="muted small">by {who(proposal.author_user_id)}</div>
        </>
      ),
    },
    {
      header: 'Branches',
      cell: (proposal) => (
        <span>
          {branchName(branches.data?.results, proposal.source_branch_id)} → {branchName(branches.data?.results, proposal.target_branch_id)}
        </span>
      ),
    },
    { header: 'State', cell: (proposal) => <span class={`state state-${proposal.outcome.status}`}>{stateOf(proposal)}</span> },
    { header: 'Reviews', class: 'num', cell: (proposal) => proposal.reviews.length },
    { header: 'Updated', cell: (proposal) => <RelativeTime seconds={proposal.updated_at} /> },
  ];

  return (
    <Page title="Merge proposals" subtitle={<a href={agentLink(agentId)}>Back to the agent</a>}>
      <div class="toolbar">
        <nav class="filters segmented" aria-label="Filter by state">
          {[undefined, ...STATES].map((each) => (
            <a key={each ?? 'all'} href={each ? `${path}?state=${each}` : path} aria-current={state === each ? 'page' : undefined}>
              {each ?? 'all'}
            </a>
          ))}
        </nav>
      </div>
      {proposals.error && <ErrorPanel error={proposals.error} title="The proposals could not be loaded" onRetry={proposals.reload} />}
      {/* Rows name their authors and branches: shown once those are known, never ids first. */}
      {!(proposals.data && usersLoaded && settled(branches)) && !proposals.error && <Loading label="Loading proposals…" />}
      {proposals.data && usersLoaded && settled(branches) && (
        <div aria-busy={proposals.loading}>
          <Table caption="Merge proposals" columns={columns} rows={proposals.data.results} rowKey={(proposal) => proposal.id} empty={state ? `No ${state} proposals.` : 'No proposals yet.'} />
          {(cursor || proposals.data.has_more) && (
            <nav class="pager" aria-label="Pages">
              {cursor ? <a href={pageLink(undefined)}>Newest</a> : <span />}
              {proposals.data.has_more && proposals.data.next_cursor && <a href={pageLink(proposals.data.next_cursor)}>Older proposals</a>}
            </nav>
          )}
        </div>
      )}

      {writable && (
        <section class="card section" aria-labelledby="new-proposal">
          <h2 id="new-proposal">Propose a merge</h2>
          {branches.error && <ErrorPanel error={branches.error} title="The branches could not be loaded" onRetry={branches.reload} />}
          {/* The form waits for its choices: before its branches arrive a select shows nothing chosen, and reviewers are missing. */}
          {!(branches.data && usersLoaded) && !branches.error && <Loading label="Loading branches and reviewers…" />}
          {branches.data && usersLoaded && (
            <form class="stack" onSubmit={create}>
              <div class="row">
                <label>
                  <span>From (source)</span>
                  <select name="source" required value={sourceId} onChange={(event) => setSourceId(event.currentTarget.value)}>
                    <option value="">Choose a branch</option>
                    {live.map((each) => (
                      <option key={each.id} value={each.id}>
                        {each.name}
                      </option>
                    ))}
                  </select>
                </label>
                <label>
                  <span>Into (target)</span>
                  <select name="target" required value={targetId} onChange={(event) => setTargetId(event.currentTarget.value)}>
                    <option value="">Choose a branch</option>
                    {live
                      .filter((each) => each.id !== sourceId)
                      .map((each) => (
                        <option key={each.id} value={each.id}>
                          {each.name}
                        </option>
                      ))}
                  </select>
                </label>
              </div>
              <label>
                <span>Title</span>
                <input type="text" name="title" required maxLength={500} value={title} onInput={(event) => setTitle(event.currentTarget.value)} />
              </label>
              <label>
                <span>Description</span>
                <textarea name="description" rows={3} value={description} onInput={(event) => setDescription(event.currentTarget.value)} />
              </label>
              <fieldset class="reviewers">
                <legend>Reviewers</legend>
                {users.filter((user) => user.user_id !== session?.who.user_id && user.role !== 'viewer').length === 0 && (
                  <span class="muted small">No one else in this workspace can review.</span>
                )}
                {users
                  .filter((user) => user.user_id !== session?.who.user_id && user.role !== 'viewer')
                  .map((user) => (
                    <label key={user.user_id} class="checkbox">
                      <input
                        type="checkbox"
                        name="reviewers"
                        value={user.user_id}
                        checked={reviewers.includes(user.user_id)}
                        onChange={(event) =>
                          setReviewers((current) => (event.currentTarget.checked ? [...current, user.user_id] : current.filter((id) => id !== user.user_id)))
                        }
                      />
                      <span>
                        {user.name} <span class="muted small">{user.role}</span>
                      </span>
                    </label>
                  ))}
              </fieldset>
              {createError && (
                <p class="field-error" role="alert">
                  {createError}
                </p>
              )}
              <div class="actions">
                <Button type="submit" variant="primary" busy={creating}>
                  Open proposal
                </Button>
              </div>
            </form>
          )}
        </section>
      )}
    </Page>
  );
}

/**
 * `/agents/:agent_id/proposals/:merge_proposal_id`: what it would merge, its reviews and comments,
 * review, comment, merge (or the server's reason it may not) and close.
 */
export function ProposalScreen({ agent_id: agentId, merge_proposal_id: proposalId }: { agent_id: string; merge_proposal_id: string }) {
  const session = useSession();
  const notices = useNotice();
  const writable = session ? canWrite(session.who.role) : false;
  const mayReview = session ? session.who.role !== 'viewer' : false;
  const loaded = useApi<Proposal>(paths.proposal(agentId, proposalId));
  const { usersLoaded, who } = useNames(session);
  const branches = useApi<{ results: Branch[] }>(paths.branches(agentId), { include_archived: true });
  const [proposal, setProposal] = useState<Proposal>();
  useEffect(() => setProposal(loaded.data), [loaded.data]);

  const [reviewComment, setReviewComment] = useState('');
  const [comment, setComment] = useState('');
  const [archiveSource, setArchiveSource] = useState(true);
  const [refusal, setRefusal] = useState<string>();
  const [closing, setClosing] = useState(false);

  const [preview, setPreview] = useState<{ changes: ReturnType<typeof configChanges>; conflicts: number } | { error: unknown }>();
  const open = proposal?.outcome.status === 'open';
  useEffect(() => {
    if (!proposal || proposal.outcome.status !== 'open') return;
    const controller = new AbortController();
    Promise.all([
      api<Preview>('GET', paths.mergePreview(agentId, proposal.source_branch_id), undefined, { query: { target_branch_id: proposal.target_branch_id }, signal: controller.signal }),
      getBranchHead(agentId, proposal.target_branch_id),
    ]).then(
      ([merged, head]: [Preview, AgentConfig]) =>
        setPreview({ changes: configChanges(editableOf(head) as unknown as Json, editableOf(merged) as unknown as Json), conflicts: merged.conflicts?.length ?? 0 }),
      (error: unknown) => {
        if (!controller.signal.aborted) setPreview({ error });
      },
    );
    return () => controller.abort();
  }, [agentId, proposal?.id, proposal?.outcome.status, proposal?.source_tip_version_id_at_creation]);

  const act = async (what: () => Promise<Proposal>, done: string, failed: string) => {
    try {
      setProposal(await what());
      notices.success(done);
      return true;
    } catch (error) {
      notices.error(error, failed);
      return false;
    }
  };
  const review = async (state: 'approved' | 'changes_requested') => {
    const ok = await act(() => reviewProposal(agentId, proposalId, state, reviewComment.trim()), state === 'approved' ? 'You approved this proposal.' : 'You requested changes.', 'The review was refused');
    if (ok) setReviewComment('');
  };
  const addComment = async (event?: SubmitEvent) => {
    event?.preventDefault();
    if (!comment.trim()) return;
    const ok = await act(() => commentOnProposal(agentId, proposalId, comment.trim()), 'Comment added.', 'The comment was not added');
    if (ok) setComment('');
  };
  const runMerge = async () => {
    setRefusal(undefined);
    try {
      const merged = await mergeProposal(agentId, proposalId, { archiveSource, force: false });
      setProposal(merged);
      notices.success(`Merged: version ${merged.outcome.status === 'merged' ? merged.outcome.version_id : ''}.`);
    } catch (error) {
      // The server's reason stays on screen beside the button, not only in a passing notice.
      setRefusal(describeError(error));
      notices.error(error, 'The merge was refused');
    }
  };

  const names = branches.data?.results;
  const reviewsByLatest = useMemo(() => [...(proposal?.reviews ?? [])].sort((a, b) => b.submitted_at - a.submitted_at), [proposal]);

  if (loaded.error) {
    return (
      <Page title="Merge proposal">
        <ErrorPanel error={loaded.error} title="The proposal could not be loaded" onRetry={loaded.reload} />
      </Page>
    );
  }
  // The proposal names users and branches: shown once those are known, never ids first.
  if (!proposal || !usersLoaded || !settled(branches)) {
    return (
      <Page title="Merge proposal">
        <Loading label="Loading the proposal…" />
      </Page>
    );
  }
  const outcome = proposal.outcome;
  return (
    <Page
      title={proposal.title || 'Untitled proposal'}
      subtitle={
        <>
          <a href={`${agentLink(agentId)}/proposals`}>All proposals</a> · {branchName(names, proposal.source_branch_id)} → {branchName(names, proposal.target_branch_id)} · by{' '}
          {who(proposal.author_user_id)} · <span class={`state state-${outcome.status}`}>{stateOf(proposal)}</span>
        </>
      }
      actions={
        writable && open ? (
          <Button variant="quiet" class="danger-text" onClick={() => setClosing(true)}>
            Close proposal
          </Button>
        ) : undefined
      }
    >
      {outcome.status === 'merged' && (
        <p class="notice-inline notice-inline-success" role="status">
          Merged <RelativeTime seconds={outcome.at} /> by {who(outcome.by_user_id)}: version{' '}
          <a class="mono" href={`${agentLink(agentId)}/versions/${encodeURIComponent(outcome.version_id)}`}>
            {outcome.version_id}
          </a>
          .
        </p>
      )}
      {outcome.status === 'closed' && (
        <p class="notice-inline" role="status">
          Closed <RelativeTime seconds={outcome.at} /> by {who(outcome.by_user_id)} ({outcome.reason}).
        </p>
      )}
      {proposal.description && <p class="description">{proposal.description}</p>}
      {proposal.requested_reviewer_user_ids.length > 0 && (
        <p class="muted small">Reviewers asked: {proposal.requested_reviewer_user_ids.map((id) => who(id)).join(', ')}</p>
      )}

      {open && (
        <section class="section" aria-labelledby="diff-title">
          <h2 id="diff-title">What it would change on {branchName(names, proposal.target_branch_id)}</h2>
          {!preview && <Loading label="Previewing the merge…" />}
          {preview && 'error' in preview && <ErrorPanel error={preview.error} title="The merge cannot be previewed" />}
          {preview && 'changes' in preview && (
            <>
              {preview.conflicts > 0 && (
                <p class="notice-inline notice-inline-warning">
                  {preview.conflicts} conflicting field{preview.conflicts === 1 ? '' : 's'}: the newer side wins here;{' '}
                  <a href={`${agentLink(agentId)}/branches/${encodeURIComponent(proposal.source_branch_id)}/merge?into=${encodeURIComponent(proposal.target_branch_id)}`}>settle them by hand</a>.
                </p>
              )}
              <ChangesTable caption="What the proposal would change on the target" rows={preview.changes} beforeLabel="Target now" afterLabel="After the merge" empty="Merging changes nothing on the target." />
            </>
          )}
        </section>
      )}

      <section class="section" aria-labelledby="reviews-title">
        <h2 id="reviews-title">Reviews ({proposal.reviews.length})</h2>
        {reviewsByLatest.length === 0 ? (
          <p class="muted">No reviews yet.</p>
        ) : (
          <ul class="timeline">
            {reviewsByLatest.map((each) => (
              <li key={each.user_id} class="card">
                <strong class={`review-${each.state}`}>{each.state === 'approved' ? 'Approved' : 'Changes requested'}</strong> by {who(each.user_id)}{' '}
                {each.reviewer_role && <span class="muted small">({each.reviewer_role})</span>} · <RelativeTime seconds={each.submitted_at} />
                {each.is_stale && <span class="badge">stale: the source changed since</span>}
                {each.comment && <p class="comment-body">{each.comment}</p>}
              </li>
            ))}
          </ul>
        )}
        {open && mayReview && (
          <form class="stack card" onSubmit={(event) => event.preventDefault()}>
            <label>
              <span>Review comment</span>
              <textarea name="review-comment" rows={2} value={reviewComment} onInput={(event) => setReviewComment(event.currentTarget.value)} />
            </label>
            <div class="actions">
              <Button variant="primary" onClick={() => review('approved')}>
                Approve
              </Button>
              <Button onClick={() => review('changes_requested')}>Request changes</Button>
            </div>
          </form>
        )}
      </section>

      {open && writable && (
        <section class="section card" aria-labelledby="merge-title">
          <h2 id="merge-title">Merge</h2>
          <label class="checkbox">
            <input type="checkbox" name="archive-source" checked={archiveSource} onChange={(event) => setArchiveSource(event.currentTarget.checked)} />
            <span>Archive the source after merging</span>
          </label>
          <div class="actions">
            <Button variant="primary" onClick={runMerge}>
              Merge proposal
            </Button>
          </div>
          {refusal && (
            <p class="field-error refusal" role="alert">
              Not merged: {refusal}
            </p>
          )}
        </section>
      )}

      <section class="section" aria-labelledby="comments-title">
        <h2 id="comments-title">Comments ({proposal.comments.length})</h2>
        <ul class="timeline">
          {proposal.comments.map((each) => (
            <li key={each.id} class="card">
              <span class="muted small">
                {who(each.user_id)} · <RelativeTime seconds={each.created_at} />
              </span>
              <p class="comment-body">{each.body}</p>
            </li>
          ))}
        </ul>
        {mayReview && (
          <form class="stack" onSubmit={(event) => void addComment(event)}>
            <label>
              <span>Comment</span>
              <textarea name="comment" rows={2} value={comment} onInput={(event) => setComment(event.currentTarget.value)} />
            </label>
            <div class="actions">
              <Button onClick={() => addComment()} disabled={!comment.trim()}>
                Add comment
              </Button>
            </div>
          </form>
        )}
      </section>

      <Confirm
        open={closing}
        title="Close this proposal?"
        confirmLabel="Close proposal"
        danger
        onConfirm={async () => {
          setProposal(await closeProposal(agentId, proposalId));
          notices.success('Proposal closed.');
        }}
        onClose={() => setClosing(false)}
      >
        <p>Nothing is merged; the branches stay as they are.</p>
      </Confirm>
    </Page>
  );
}
