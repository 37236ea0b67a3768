import { useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';

import { AUDIT_ACTIONS, AUDIT_EVENTS_PATH, type AuditEvent, type AuditEventsPage } from '../api/audit';
import { useSession } from '../session';
import { Button, type Column, ErrorPanel, Loading, Page, RelativeTime, Table } from '../ui';
import { useApi } from '../use-api';

const PAGE_SIZE = 50;

interface Filters {
  agent?: string;
  action?: string;
  user?: string;
  /** Unix seconds. */
  since?: string;
  cursor?: string;
}

/**
 * `/audit`: who changed what and when in the workspace (admins only), newest first. The filters the
 * route supports (agent, action, user, since) and the page are in the URL
 * (`?agent=&action=&user=&since=<unix seconds>&cursor=`).
 */
export function AuditScreen() {
  const session = useSession();
  const isAdmin = session?.who.role === 'admin';
  return (
    <Page title="Audit log" subtitle="Who changed what, and when, in this workspace. Commits are in each branch's history.">
      {isAdmin ? (
        <AuditLog />
      ) : (
        <div class="card" role="note">
          <h2>Only admins can read the audit log</h2>
          <p class="muted">You are signed in as {session?.who.role ?? 'a user'}. Ask an admin of {session?.who.workspace_name ?? 'this workspace'} for what you need.</p>
        </div>
      )}
    </Page>
  );
}

function AuditLog() {
  const { query, path, route } = useLocation();
  const filters: Filters = { agent: query.agent, action: query.action, user: query.user, since: query.since, cursor: query.cursor };
  const [form, setForm] = useState(() => formOf(filters));
  // The cursors of the pages before this one, for "Newer" (a cursor only goes to older events).
  const [earlier, setEarlier] = useState<(string | undefined)[]>([]);
  useEffect(() => setForm(formOf(filters)), [query.agent, query.action, query.user, query.since]);

  const page = useApi<AuditEventsPage>(AUDIT_EVENTS_PATH, {
    agent_id: filters.agent,
    action: filters.action,
    actor_user_id: filters.user,
    since_unix_secs: filters.since,
    cursor: filters.cursor,
    page_size: PAGE_SIZE,
  });

  const show = (next: Filters) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(next)) if (value) params.set(name, value);
    const search = params.toString();
    route(search ? `${path}?${search}` : path);
  };
  const filterBy = (next: Filters) => {
    setEarlier([]);
    show(next);
  };
  const submit = (event: SubmitEvent) => {
    event.preventDefault();
    const since = form.since ? Math.floor(new Date(form.since).getTime() / 1000) : undefined;
    filterBy({
      agent: form.agent.trim() || undefined,
      action: form.action || undefined,
      user: form.user.trim() || undefined,
      since: since !== undefined && Number.isFinite(since) ? String(since) : undefined,
    });
  };
  const { cursor: _cursor, ...withoutCursor } = filters;
  const filtered = Boolean(filters.agent || filters.action || filters.user || filters.since);

  const columns: Column<AuditEvent>[] = [
    { header: 'When', cell: (event) => <RelativeTime seconds={event.at_unix_secs} /> },
    { header: 'Action', cell: (event) => <code>{event.action}</code> },
    {
      header: 'Who',
      cell: (event) =>
        event.actor_user_id ? (
          <button type="button" class="link-button" aria-label={`Show events by ${event.actor_name ?? event.actor_user_id}`} onClick={() => filterBy({ ...withoutCursor, user: event.actor_user_id! })}>
            {event.actor_name ?? event.actor_user_id}
          </button>
        ) : (
          <span class="muted">{event.actor_kind === 'cli' ? 'operator (CLI)' : event.actor_kind}</span>
        ),
    },
    {
      header: 'Agent',
      cell: (event) =>
        event.agent_id ? (
          <button type="button" class="link-button mono small audit-id" title={event.agent_id} aria-label={`Show events of agent ${event.agent_id}`} onClick={() => filterBy({ ...withoutCursor, agent: event.agent_id! })}>
            {event.agent_id}
          </button>
        ) : (
          <span class="muted">—</span>
        ),
    },
    { header: 'Resource', cell: (event) => (event.resource_id ? <span class="mono small audit-id" title={event.resource_id}>{event.resource_id}</span> : <span class="muted">—</span>) },
    {
      header: 'Details',
      cell: (event) =>
        Object.keys(event.details).length === 0 ? (
          <span class="muted">—</span>
        ) : (
          <details class="audit-details">
            <summary>{summarize(event.details)}</summary>
            <pre>{JSON.stringify(event.details, null, 2)}</pre>
          </details>
        ),
    },
  ];

  return (
    <>
      <form class="filters audit-filters card" role="search" aria-label="Filter the audit log" onSubmit={submit}>
        <label>
          <span>Agent</span>
          <input type="text" name="agent" value={form.agent} placeholder="agent_…" onInput={(event) => setForm({ ...form, agent: event.currentTarget.value })} />
        </label>
        <label>
          <span>Action</span>
          <select name="action" value={form.action} onChange={(event) => setForm({ ...form, action: event.currentTarget.value })}>
            <option value="">Any action</option>
            {AUDIT_ACTIONS.map((action) => (
              <option key={action} value={action}>
                {action}
              </option>
            ))}
          </select>
        </label>
        <label>
          <span>User</span>
          <input type="text" name="user" value={form.user} placeholder="User id" onInput={(event) => setForm({ ...form, user: event.currentTarget.value })} />
        </label>
        <label>
          <span>Since</span>
          <input type="datetime-local" name="since" value={form.since} onInput={(event) => setForm({ ...form, since: event.currentTarget.value })} />
        </label>
        <div class="actions">
          <Button type="submit" variant="primary">
            Filter
          </Button>
          {filtered && (
            <Button variant="quiet" onClick={() => filterBy({})}>
              Clear filters
            </Button>
          )}
        </div>
      </form>

      {page.error && <ErrorPanel error={page.error} title="The audit log could not be loaded" onRetry={page.reload} />}
      {!page.data && page.loading && <Loading label="Loading events…" />}
      {page.data && (
        <div aria-busy={page.loading}>
          <Table
            caption="Audit events, newest first"
            columns={columns}
            rows={page.data.events}
            rowKey={(event) => event.id}
            empty={filtered ? 'No event matches these filters.' : 'No events yet.'}
          />
          <nav class="pager" aria-label="Pages">
            <Button
              disabled={filters.cursor === undefined}
              onClick={() => {
                const back = earlier.length > 0 ? earlier[earlier.length - 1] : undefined;
                setEarlier(earlier.slice(0, -1));
                show({ ...withoutCursor, cursor: back });
              }}
            >
              {earlier.length === 0 && filters.cursor !== undefined ? 'Newest' : 'Newer'}
            </Button>
            <span class="muted small">{page.loading ? 'Loading…' : `${page.data.events.length} events on this page`}</span>
            <Button
              disabled={!page.data.has_more || !page.data.next_cursor}
              onClick={() => {
                setEarlier([...earlier, filters.cursor]);
                show({ ...withoutCursor, cursor: page.data?.next_cursor ?? undefined });
              }}
            >
              Older
            </Button>
          </nav>
        </div>
      )}
    </>
  );
}

function formOf(filters: Filters) {
  return { agent: filters.agent ?? '', action: filters.action ?? '', user: filters.user ?? '', since: filters.since ? localInputValue(Number(filters.since)) : '' };
}

/** `YYYY-MM-DDTHH:MM` in the browser's time zone, as a datetime-local input shows it. */
function localInputValue(unixSeconds: number): string {
  const date = new Date(unixSeconds * 1000);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (value: number) => String(value).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A one-line gist of an event's details: its keys and short values. */
function summarize(details: Record<string, unknown>): string {
  const parts = Object.entries(details).map(([name, value]) => {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) {
      const text = String(value);
      return `${name}: ${text.length > 40 ? `${text.slice(0, 40)}…` : text}`;
    }
    return name;
  });
  const line = parts.join(' · ');
  return line.length > 90 ? `${line.slice(0, 90)}…` : line;
}
