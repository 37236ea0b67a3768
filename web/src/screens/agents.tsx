import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';

import { api } from '../api';
import { canWrite, useSession } from '../session';
import { Button, type Column, Confirm, ErrorPanel, Loading, Page, RelativeTime, Table, useNotice } from '../ui';
import { useApi } from '../use-api';

// Wire shapes of GET /v1/convai/agents (upstream's GetAgentsPageResponseModel), the fields shown.
interface AgentSummary {
  agent_id: string;
  name: string;
  tags: string[];
  created_at_unix_secs: number;
  last_call_time_unix_secs?: number | null;
  archived?: boolean;
}
interface AgentsPage {
  agents: AgentSummary[];
  next_cursor?: string | null;
  has_more: boolean;
}

const PAGE_SIZE = 30;

/**
 * `/agents`: search, a tag filter, pages, create, duplicate and delete. The search, the tag and the
 * page are in the URL (`?search=&tag=&cursor=`), so any view can be shared.
 */
export function AgentsScreen() {
  const session = useSession();
  const { query, path, route } = useLocation();
  const notices = useNotice();
  const search = query.search ?? '';
  const tag = query.tag ?? '';
  const cursor = query.cursor;
  const [searchInput, setSearchInput] = useState(search);
  const [tagInput, setTagInput] = useState(tag);
  // The cursors of the pages before this one, for "Previous" (a cursor only goes forward).
  const [earlier, setEarlier] = useState<(string | undefined)[]>([]);
  const [newName, setNewName] = useState('');
  const [creating, setCreating] = useState(false);
  const [toDelete, setToDelete] = useState<AgentSummary>();
  const page = useApi<AgentsPage>('/v1/convai/agents', { page_size: PAGE_SIZE, search: search || undefined, tags: tag || undefined, cursor });
  const writable = session ? canWrite(session.who.role) : false;

  useEffect(() => setSearchInput(search), [search]);
  useEffect(() => setTagInput(tag), [tag]);

  const show = (next: { search?: string; tag?: string; cursor?: string }) => {
    const params = new URLSearchParams();
    if (next.search) params.set('search', next.search);
    if (next.tag) params.set('tag', next.tag);
    if (next.cursor) params.set('cursor', next.cursor);
    const search = params.toString();
    route(search ? `${path}?${search}` : path);
  };
  const filter = (event: SubmitEvent) => {
    event.preventDefault();
    setEarlier([]);
    show({ search: searchInput.trim(), tag: tagInput.trim() });
  };
  const filterByTag = (value: string) => {
    setEarlier([]);
    show({ search, tag: value });
  };

  const create = async (event: SubmitEvent) => {
    event.preventDefault();
    const name = newName.trim();
    setCreating(true);
    try {
      const created = await api<{ agent_id: string }>('POST', '/v1/convai/agents/create', { name: name || undefined, conversation_config: {} });
      notices.success(`Agent “${name || 'Untitled'}” created (${created.agent_id})`);
      setNewName('');
      page.reload();
    } catch (error) {
      notices.error(error, 'The agent was not created');
    } finally {
      setCreating(false);
    }
  };
  const duplicate = async (agent: AgentSummary) => {
    try {
      const copy = await api<{ agent_id: string }>('POST', `/v1/convai/agents/${encodeURIComponent(agent.agent_id)}/duplicate`, {});
      notices.success(`“${agent.name}” duplicated (${copy.agent_id})`);
      page.reload();
    } catch (error) {
      notices.error(error, `“${agent.name}” was not duplicated`);
    }
  };
  const remove = async (agent: AgentSummary) => {
    await api('DELETE', `/v1/convai/agents/${encodeURIComponent(agent.agent_id)}`);
    notices.success(`Agent “${agent.name}” deleted`);
    page.reload();
  };

  const columns: Column<AgentSummary>[] = [
    {
      header: 'Name',
      cell: (agent) => (
        <>
          <a href={`/agents/${encodeURIComponent(agent.agent_id)}`}>{agent.name || 'Untitled'}</a>
          {agent.archived && <span class="badge">archived</span>}
          <div class="muted small mono">{agent.agent_id}</div>
        </>
      ),
    },
    {
      header: 'Tags',
      cell: (agent) => (
        <span class="tags">
          {agent.tags.map((each) => (
            <button key={each} type="button" class="tag" aria-label={`Show agents tagged ${each}`} onClick={() => filterByTag(each)}>
              {each}
            </button>
          ))}
        </span>
      ),
    },
    { header: 'Created', cell: (agent) => <RelativeTime seconds={agent.created_at_unix_secs} /> },
    ...(writable
      ? [
          {
            header: <span class="visually-hidden">Actions</span>,
            class: 'actions',
            cell: (agent: AgentSummary) => (
              <>
                <Button variant="quiet" onClick={() => duplicate(agent)} aria-label={`Duplicate ${agent.name}`}>
                  Duplicate
                </Button>
                <Button variant="quiet" class="danger-text" onClick={() => setToDelete(agent)} aria-label={`Delete ${agent.name}`}>
                  Delete
                </Button>
              </>
            ),
          },
        ]
      : []),
  ];

  return (
    <Page title="Agents">
      <div class="toolbar">
        <form class="filters" role="search" onSubmit={filter}>
          <label>
            <span>Search</span>
            <input type="search" name="search" value={searchInput} placeholder="Name" onInput={(event) => setSearchInput(event.currentTarget.value)} />
          </label>
          <label>
            <span>Tag</span>
            <input type="text" name="tag" value={tagInput} placeholder="Any tag" onInput={(event) => setTagInput(event.currentTarget.value)} />
          </label>
          <Button type="submit">Filter</Button>
          {(search || tag) && (
            <Button variant="quiet" onClick={() => show({})}>
              Clear
            </Button>
          )}
        </form>
        {writable && (
          <form class="create" onSubmit={create}>
            <label>
              <span>New agent</span>
              <input type="text" name="name" value={newName} placeholder="Name" maxLength={512} onInput={(event) => setNewName(event.currentTarget.value)} />
            </label>
            <Button type="submit" variant="primary" busy={creating}>
              Create agent
            </Button>
          </form>
        )}
      </div>

      {page.error && <ErrorPanel error={page.error} title="The agents could not be loaded" onRetry={page.reload} />}
      {!page.data && page.loading && <Loading label="Loading agents…" />}
      {page.data && (
        <div aria-busy={page.loading}>
          <Table
            caption="Agents"
            columns={columns}
            rows={page.data.agents}
            rowKey={(agent) => agent.agent_id}
            empty={search || tag ? 'No agent matches these filters.' : 'No agents yet.'}
          />
          <nav class="pager" aria-label="Pages">
            <Button
              disabled={cursor === undefined}
              onClick={() => {
                const previous = earlier.slice(0, -1);
                const back = earlier.length > 0 ? earlier[earlier.length - 1] : undefined;
                setEarlier(previous);
                show({ search, tag, cursor: back });
              }}
            >
              {earlier.length === 0 && cursor !== undefined ? 'First page' : 'Previous'}
            </Button>
            <span class="muted small">{page.loading ? 'Loading…' : `${page.data.agents.length} on this page`}</span>
            <Button
              disabled={!page.data.has_more || !page.data.next_cursor}
              onClick={() => {
                setEarlier([...earlier, cursor]);
                show({ search, tag, cursor: page.data?.next_cursor ?? undefined });
              }}
            >
              Next
            </Button>
          </nav>
        </div>
      )}

      <Confirm
        open={toDelete !== undefined}
        title={`Delete “${toDelete?.name ?? ''}”?`}
        confirmLabel="Delete agent"
        danger
        onConfirm={() => remove(toDelete!)}
        onClose={() => setToDelete(undefined)}
      >
        <p>Its branches, versions, drafts and deployments are deleted with it. This cannot be undone.</p>
      </Confirm>
    </Page>
  );
}
