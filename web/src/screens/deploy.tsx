import { useLocation } from 'preact-iso';
import { useEffect, useId, useMemo, useState } from 'preact/hooks';

import type { ApiError } from '../api';
import {
  type BranchSummary,
  branchesPath,
  deploy,
  type DeploymentHistoryItem,
  type DeploymentHistoryPage,
  type DeploymentPreview,
  deploymentsPath,
  previewDeployment,
  previewRollback,
  rollBack,
  type Split,
} from '../api/deploy';
import { canWrite, useSession } from '../session';
import { Button, type Column, Confirm, ErrorPanel, Loading, Page, RelativeTime, Table, useNotice } from '../ui';
import { useApi } from '../use-api';

const HISTORY_PAGE_SIZE = 10;
/** Percentages may be fractions; a total within this of 100 is 100 (the server's own tolerance). */
const TOTAL_TOLERANCE = 1e-9;
/** How long the editor waits after the last change before asking for a movement preview. */
const PREVIEW_DELAY_MS = 250;
/** Colours of the split bars, by the branch's place in the list (classes in styles.css). */
const COLOURS = 8;

/**
 * `/agents/:agent_id/deploy`: the traffic split editor with the server's movement preview, the
 * live deployment, and the deployment history with rollback. The split being edited is in the
 * query (`?split=<branch_id>:<percent>,…`) and so is the history page (`?page=`): a proposed split
 * can be shared as a link.
 */
export function DeployScreen({ agent_id: agentId }: { agent_id: string }) {
  const session = useSession();
  const { path, query, route } = useLocation();
  const notices = useNotice();
  const writable = session ? canWrite(session.who.role) : false;
  const page = Math.max(1, Number.parseInt(query.page ?? '1', 10) || 1);

  const agent = useApi<{ name: string; main_branch_id: string }>(`/v1/convai/agents/${encodeURIComponent(agentId)}`);
  const branches = useApi<{ results: BranchSummary[] }>(branchesPath(agentId), { include_archived: true });
  const live = useApi<DeploymentHistoryPage>(deploymentsPath(agentId), { page: 1, page_size: 1 });
  const history = useApi<DeploymentHistoryPage>(deploymentsPath(agentId), { page, page_size: HISTORY_PAGE_SIZE });
  const [toRollBack, setToRollBack] = useState<DeploymentHistoryItem>();
  const rollbackPreview = usePreview(toRollBack?.id, (signal) => previewRollback(agentId, toRollBack!.id, signal));

  const allBranches = branches.data?.results ?? [];
  const names = useMemo(() => new Map(allBranches.map((branch) => [branch.id, branch.name])), [allBranches]);
  const nameOf = (branchId: string) => names.get(branchId) ?? branchId;
  const active = live.data?.results.find((item) => item.is_active);

  const reloadAll = () => {
    branches.reload();
    live.reload();
    history.reload();
  };
  const urlWith = (next: { split?: string; page?: number }) => {
    const params = new URLSearchParams();
    if (next.split) params.set('split', next.split);
    if (next.page && next.page > 1) params.set('page', String(next.page));
    const search = params.toString();
    return search ? `${path}?${search}` : path;
  };

  const rollBackTo = async (item: DeploymentHistoryItem) => {
    await rollBack(agentId, item.id);
    notices.success(`Rolled back to ${describeSplit(item.traffic_percentage_branch_id_map, nameOf)}`);
    reloadAll();
  };

  const loadError = agent.error ?? branches.error ?? live.error;
  const agentName = agent.data?.name || 'Untitled agent';
  return (
    <Page
      title="Deploy"
      subtitle={
        <>
          <a href={`/agents/${encodeURIComponent(agentId)}`}>{agent.data ? agentName : agentId}</a> · how conversations are split between branches
        </>
      }
    >
      {loadError && <ErrorPanel error={loadError} title="The deployment could not be loaded" onRetry={reloadAll} />}
      {!loadError && (!branches.data || !live.data) && <Loading label="Loading the deployment…" />}
      {branches.data && live.data && (
        <div class="deploy-layout">
          <section class="card" aria-labelledby="live-heading">
            <h2 id="live-heading">Live now</h2>
            {active ? (
              <>
                <SplitBar split={active.traffic_percentage_branch_id_map} order={allBranches} nameOf={nameOf} label="Live split" />
                <p class="muted small">
                  Deployed <RelativeTime seconds={active.deployed_at_unix_secs} />
                  {active.access_info?.creator_name ? ` by ${active.access_info.creator_name}` : ''} · <span class="mono">{active.id}</span>
                </p>
              </>
            ) : (
              <p class="muted">No deployment yet.</p>
            )}
          </section>

          {writable ? (
            <SplitEditor
              agentId={agentId}
              branches={allBranches.filter((branch) => !branch.is_archived)}
              liveSplit={active?.traffic_percentage_branch_id_map ?? {}}
              order={allBranches}
              nameOf={nameOf}
              shared={query.split}
              onShare={(split) => route(urlWith({ split, page }), true)}
              onDeployed={(split) => {
                notices.success(`Deployed: ${describeSplit(Object.fromEntries(split), nameOf)}`);
                route(urlWith({ page: 1 }), true);
                reloadAll();
              }}
            />
          ) : (
            <section class="card">
              <h2>Change the split</h2>
              <p class="muted">Your role ({session?.who.role}) can see deployments but not change them; an editor or admin can.</p>
            </section>
          )}
        </div>
      )}

      <section class="deploy-history" aria-labelledby="history-heading">
        <h2 id="history-heading">Deployment history</h2>
        {history.error && <ErrorPanel error={history.error} title="The history could not be loaded" onRetry={history.reload} />}
        {!history.data && history.loading && <Loading label="Loading the history…" />}
        {history.data && (
          <div aria-busy={history.loading}>
            <Table
              caption="Deployment history, newest first"
              rows={history.data.results}
              rowKey={(item) => item.id}
              empty="No deployments yet."
              columns={historyColumns(nameOf, allBranches, writable, setToRollBack)}
            />
            <nav class="pager" aria-label="History pages">
              <Button disabled={page <= 1} onClick={() => route(urlWith({ split: query.split, page: page - 1 }))}>
                Newer
              </Button>
              <span class="muted small">
                Page {page} of {Math.max(1, Math.ceil(history.data.meta.total / HISTORY_PAGE_SIZE))} · {history.data.meta.total} deployments
              </span>
              <Button
                disabled={page * HISTORY_PAGE_SIZE >= history.data.meta.total}
                onClick={() => route(urlWith({ split: query.split, page: page + 1 }))}
              >
                Older
              </Button>
            </nav>
          </div>
        )}
      </section>

      <Confirm
        open={toRollBack !== undefined}
        title="Roll back to this split?"
        confirmLabel="Roll back"
        onConfirm={() => rollBackTo(toRollBack!)}
        onClose={() => setToRollBack(undefined)}
      >
        {toRollBack && (
          <>
            <p>
              Makes the split deployed <RelativeTime seconds={toRollBack.deployed_at_unix_secs} /> live again, as a new deployment:
            </p>
            <SplitBar split={toRollBack.traffic_percentage_branch_id_map} order={allBranches} nameOf={nameOf} label="Split to restore" />
            <MovementPreview preview={rollbackPreview} nameOf={nameOf} order={allBranches} heading="If you roll back" showResult={false} />
            <p class="muted small">Conversations go back to the branch they had under it, moving no more of them than the change requires.</p>
          </>
        )}
      </Confirm>
    </Page>
  );
}

function historyColumns(
  nameOf: (branchId: string) => string,
  order: BranchSummary[],
  writable: boolean,
  onRollBack: (item: DeploymentHistoryItem) => void,
): Column<DeploymentHistoryItem>[] {
  return [
    {
      header: 'Deployed',
      cell: (item) => (
        <>
          <RelativeTime seconds={item.deployed_at_unix_secs} />
          {item.is_active && <span class="badge badge-live">live</span>}
        </>
      ),
    },
    { header: 'Split', cell: (item) => <SplitBar split={item.traffic_percentage_branch_id_map} order={order} nameOf={nameOf} label="Split" compact /> },
    { header: 'By', cell: (item) => item.access_info?.creator_name ?? <span class="muted">unknown</span> },
    { header: 'Source', cell: (item) => (item.source === 'branch_merge' ? 'merge' : (item.source ?? 'manual')) },
    ...(writable
      ? [
          {
            header: <span class="visually-hidden">Actions</span>,
            class: 'actions',
            cell: (item: DeploymentHistoryItem) =>
              item.is_active ? null : (
                <Button variant="quiet" onClick={() => onRollBack(item)} aria-label={`Roll back to ${describeSplit(item.traffic_percentage_branch_id_map, nameOf)}`}>
                  Roll back
                </Button>
              ),
          },
        ]
      : []),
  ];
}

interface SplitEditorProps {
  agentId: string;
  /** The branches that can receive traffic (not archived). */
  branches: BranchSummary[];
  liveSplit: Record<string, number>;
  /** Every branch, for stable colours. */
  order: BranchSummary[];
  nameOf: (branchId: string) => string;
  /** The split in the URL (`<branch_id>:<percent>,…`), if someone is sharing one. */
  shared: string | undefined;
  /** Puts the edited split in the URL (undefined: the live split, nothing to share). */
  onShare: (split: string | undefined) => void;
  onDeployed: (split: Split) => void;
}

/** A control per branch (number and slider), the live total, the server's movement preview, Deploy. */
function SplitEditor({ agentId, branches, liveSplit, order, nameOf, shared, onShare, onDeployed }: SplitEditorProps) {
  const liveTexts = () => Object.fromEntries(branches.map((branch) => [branch.id, String(liveSplit[branch.id] ?? 0)]));
  const [texts, setTexts] = useState<Record<string, string>>(() => ({ ...liveTexts(), ...parseShared(shared) }));
  const liveKey = JSON.stringify(liveSplit);
  // A new live split (after a deploy or a rollback) resets the editor, unless a shared split is open.
  useEffect(() => {
    if (!shared) setTexts(liveTexts());
  }, [liveKey]);

  const values = branches.map((branch) => {
    const text = texts[branch.id] ?? '0';
    const value = text.trim() === '' ? Number.NaN : Number(text);
    return { branch, text, value, valid: Number.isFinite(value) && value >= 0 && value <= 100 };
  });
  const invalid = values.find((each) => !each.valid);
  const total = values.reduce((sum, each) => sum + (each.valid ? each.value : 0), 0);
  const split: Split = values.filter((each) => each.valid && each.value > 0).map((each) => [each.branch.id, each.value]);
  const isLive = values.every((each) => each.valid && Math.abs(each.value - (liveSplit[each.branch.id] ?? 0)) <= TOTAL_TOLERANCE);
  const totalIs100 = Math.abs(total - 100) <= TOTAL_TOLERANCE;
  const blocked = invalid
    ? `Enter a share from 0 to 100 for ${invalid.branch.name}.`
    : !totalIs100
      ? total < 100
        ? `The shares total ${formatPercent(total)}: ${formatPercent(100 - total)} is not assigned. A split must total exactly 100%.`
        : `The shares total ${formatPercent(total)}: ${formatPercent(total - 100)} too much. A split must total exactly 100%.`
      : isLive
        ? 'This split is already live.'
        : undefined;

  const setShare = (branchId: string, text: string) => {
    const next = { ...texts, [branchId]: text };
    setTexts(next);
    const same = branches.every((branch) => Number(next[branch.id] ?? 0) === (liveSplit[branch.id] ?? 0));
    onShare(same ? undefined : encodeShared(next));
  };
  const reset = () => {
    setTexts(liveTexts());
    onShare(undefined);
  };

  const preview = useMovementPreview(agentId, !invalid && totalIs100 && !isLive ? split : undefined);
  const [deployError, setDeployError] = useState<unknown>();

  return (
    <section class="card split-editor" aria-labelledby="editor-heading">
      <h2 id="editor-heading">New split</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
        }}
      >
        <div class="split-rows">
          {values.map(({ branch, text, valid }) => {
            const inputId = `share-${branch.id}`;
            return (
              <div class="split-row" key={branch.id}>
                <span class="split-name">
                  <span class={`swatch colour-${colourOf(branch.id, order)}`} aria-hidden="true" />
                  <label for={inputId}>
                    {branch.name}
                    <span class="visually-hidden"> share (%)</span>
                  </label>
                  {branch.protection_status === 'admin_perms_required' && <span class="badge">protected</span>}
                </span>
                <input
                  type="range"
                  min={0}
                  max={100}
                  step={1}
                  value={valid ? Number(text) : 0}
                  aria-label={`${branch.name} share slider`}
                  onInput={(event) => setShare(branch.id, event.currentTarget.value)}
                />
                <span class="split-number">
                  <input
                    id={inputId}
                    type="number"
                    min={0}
                    max={100}
                    step={0.01}
                    inputMode="decimal"
                    value={text}
                    aria-invalid={!valid}
                    onInput={(event) => setShare(branch.id, event.currentTarget.value)}
                  />
                  <span aria-hidden="true">%</span>
                </span>
              </div>
            );
          })}
        </div>
        <p class={`split-total${totalIs100 ? '' : ' is-off'}`} role="status" aria-live="polite">
          Total <strong>{formatPercent(total)}</strong>
        </p>
        {blocked && (
          <p id="deploy-blocked" class="muted small">
            {blocked}
          </p>
        )}

        <MovementPreview preview={preview} nameOf={nameOf} order={order} />

        {deployError !== undefined && <ErrorPanel error={deployError} title="The split was not deployed" />}
        <div class="actions">
          <Button variant="quiet" onClick={reset} disabled={isLive && !shared}>
            Reset to live
          </Button>
          <Button
            variant="primary"
            disabled={blocked !== undefined}
            aria-describedby={blocked ? 'deploy-blocked' : undefined}
            onClick={async () => {
              setDeployError(undefined);
              try {
                await deploy(agentId, split);
                onDeployed(split);
              } catch (error) {
                setDeployError(error);
              }
            }}
          >
            Deploy
          </Button>
        </div>
      </form>
    </section>
  );
}

interface PreviewState {
  split?: string;
  data?: DeploymentPreview;
  error?: ApiError;
  loading: boolean;
}

/** The server's movement preview of `split`, asked for a moment after it last changed; undefined: none to show. */
function useMovementPreview(agentId: string, split: Split | undefined): PreviewState {
  return usePreview(split ? JSON.stringify(split) : undefined, (signal) => previewDeployment(agentId, split!, signal), PREVIEW_DELAY_MS);
}

/** Loads a preview whenever `key` changes (after `delayMs`), dropping an older answer that arrives late. */
function usePreview(key: string | undefined, load: (signal: AbortSignal) => Promise<DeploymentPreview>, delayMs = 0): PreviewState {
  const [state, setState] = useState<PreviewState>({ loading: false });
  useEffect(() => {
    if (!key) {
      setState({ loading: false });
      return;
    }
    const controller = new AbortController();
    setState((previous) => ({ ...previous, split: key, loading: true }));
    const timer = setTimeout(() => {
      load(controller.signal).then(
        (data) => setState({ split: key, data, loading: false }),
        (error: unknown) => {
          if (!controller.signal.aborted) setState({ split: key, error: error as ApiError, loading: false });
        },
      );
    }, delayMs);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [key]);
  return state;
}

interface MovementPreviewProps {
  preview: PreviewState;
  nameOf: (id: string) => string;
  order: BranchSummary[];
  heading?: string;
  /** Whether to draw the resulting split (the rollback dialog already shows it). */
  showResult?: boolean;
}

function MovementPreview({ preview, nameOf, order, heading = 'If you deploy this split', showResult = true }: MovementPreviewProps) {
  const headingId = useId();
  if (!preview.split) return null;
  return (
    <section class="movement" aria-labelledby={headingId} aria-busy={preview.loading}>
      <h3 id={headingId}>{heading}</h3>
      {preview.loading && !preview.data && <Loading label="Computing which conversations would move…" />}
      {preview.error && (
        <p class="field-error" role="alert">
          {preview.error.message}
        </p>
      )}
      {preview.data && (
        <div class={preview.loading ? 'is-stale' : undefined}>
          <p class="movement-summary">
            {preview.data.moved_percentage === 0 ? (
              'No conversation changes branch.'
            ) : (
              <>
                <strong>{formatPercent(preview.data.moved_percentage)}</strong> of conversations change branch; the rest stay where they are.
              </>
            )}
          </p>
          {preview.data.movements.length > 0 && (
            <table class="table movement-table">
              <caption class="visually-hidden">Conversations that would move, by branch</caption>
              <thead>
                <tr>
                  <th scope="col">From</th>
                  <th scope="col">To</th>
                  <th scope="col" class="num">
                    Share moved
                  </th>
                </tr>
              </thead>
              <tbody>
                {preview.data.movements.map((movement) => (
                  <tr key={`${movement.from_branch_id}>${movement.to_branch_id}`}>
                    <td>{nameOf(movement.from_branch_id)}</td>
                    <td>→ {nameOf(movement.to_branch_id)}</td>
                    <td class="num">{formatPercent(movement.percentage)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {showResult && <SplitBar split={preview.data.traffic_percentage_branch_id_map} order={order} nameOf={nameOf} label="Resulting split" />}
          <p class="muted small">Computed by the server from the live bucket table, as the deployment will route.</p>
        </div>
      )}
    </section>
  );
}

/** A split as a stacked bar (SVG: sizes are attributes, which the CSP allows) and a legend. */
function SplitBar({ split, order, nameOf, label, compact }: { split: Record<string, number>; order: BranchSummary[]; nameOf: (id: string) => string; label: string; compact?: boolean }) {
  const entries = Object.entries(split).filter(([, percentage]) => percentage > 0);
  let offset = 0;
  return (
    <div class={`split-bar${compact ? ' is-compact' : ''}`}>
      {!compact && (
        <svg viewBox="0 0 100 4" preserveAspectRatio="none" role="img" aria-label={`${label}: ${describeSplit(split, nameOf)}`}>
          {entries.map(([branchId, percentage]) => {
            const x = offset;
            offset += percentage;
            return <rect key={branchId} x={x} y={0} width={percentage} height={4} class={`colour-${colourOf(branchId, order)}`} />;
          })}
        </svg>
      )}
      <ul class="split-legend">
        {entries.map(([branchId, percentage]) => (
          <li key={branchId}>
            <span class={`swatch colour-${colourOf(branchId, order)}`} aria-hidden="true" />
            {nameOf(branchId)} <strong>{formatPercent(percentage)}</strong>
          </li>
        ))}
      </ul>
    </div>
  );
}

function colourOf(branchId: string, order: BranchSummary[]): number {
  const index = order.findIndex((branch) => branch.id === branchId);
  return (index < 0 ? 0 : index) % COLOURS;
}

export function formatPercent(value: number): string {
  return `${Math.round(value * 100) / 100}%`;
}

function describeSplit(split: Record<string, number>, nameOf: (id: string) => string): string {
  return Object.entries(split)
    .filter(([, percentage]) => percentage > 0)
    .map(([branchId, percentage]) => `${nameOf(branchId)} ${formatPercent(percentage)}`)
    .join(', ');
}

/** `<branch_id>:<percent>,…` from the editor's texts (what the URL holds). */
function encodeShared(texts: Record<string, string>): string {
  return Object.entries(texts)
    .map(([branchId, text]) => `${branchId}:${text.trim()}`)
    .join(',');
}

function parseShared(shared: string | undefined): Record<string, string> {
  if (!shared) return {};
  const texts: Record<string, string> = {};
  for (const part of shared.split(',')) {
    const at = part.lastIndexOf(':');
    if (at > 0) texts[part.slice(0, at)] = part.slice(at + 1);
  }
  return texts;
}
