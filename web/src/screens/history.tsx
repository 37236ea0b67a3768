import { useLocation } from 'preact-iso';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';

import { type AgentConfig, type AgentVersion, agentConfigPath, type BranchList, branchesPath } from '../api/history';
import { BranchFromVersion, type BranchTarget } from '../history/BranchFromVersion';
import { type GraphLayout, graphWidth, laneX, layoutGraph, ROW_HEIGHT, rowY } from '../history/graph-layout';
import { useAgentHistory } from '../history/use-agent-history';
import { screenPaths } from '../history/paths';
import { canWrite, useSession } from '../session';
import { Button, ErrorPanel, Loading, Page, RelativeTime } from '../ui';
import { settled, useApi } from '../use-api';

/** Rows drawn above and below the visible ones, so a quick scroll or Tab finds them ready. */
const OVERSCAN = 12;

/**
 * `/agents/:agent_id/history`: the version graph of every branch, newest first, 100 versions a
 * page (older pages load as the list is scrolled to its end), only the rows in view drawn. Two
 * versions picked (`?a=&b=` in the URL) open their diff.
 */
export function HistoryScreen({ agent_id: agentId }: { agent_id: string }) {
  const session = useSession();
  const { query, path, route } = useLocation();
  const agent = useApi<AgentConfig>(agentConfigPath(agentId));
  const branches = useApi<BranchList>(branchesPath(agentId), { include_archived: true, limit: 100 });
  const history = useAgentHistory(agentId);
  const [branchFrom, setBranchFrom] = useState<BranchTarget>();
  const writable = session ? canWrite(session.who.role) : false;

  const ready = settled(agent, branches);
  const branchName = useMemo(() => new Map((branches.data?.results ?? []).map((branch) => [branch.id, branch.name])), [branches.data]);
  // The lane order so far, so a page of older versions never moves a lane.
  const lanes = useRef<string[]>([]);
  const layout = useMemo(() => {
    // Not before main's id is known: the first lanes laid stay where they are.
    const laid = layoutGraph(ready ? history.versions : [], agent.data?.main_branch_id ?? undefined, lanes.current);
    lanes.current = [...laid.laneOf.keys()];
    return laid;
  }, [history.versions, agent.data?.main_branch_id, ready]);

  const selected = [query.a, query.b].filter((id): id is string => Boolean(id));
  const toggle = (versionId: string) => {
    const next = selected.includes(versionId) ? selected.filter((id) => id !== versionId) : [...selected.slice(-1), versionId];
    const params = new URLSearchParams();
    if (next[0]) params.set('a', next[0]);
    if (next[1]) params.set('b', next[1]);
    const search = params.toString();
    route(search ? `${path}?${search}` : path, true);
  };
  // The diff runs from the older of the two (lower in the list) to the newer.
  const compareUrl = (() => {
    if (selected.length !== 2) return undefined;
    const [first, second] = selected.map((id) => layout.rowOf.get(id));
    if (first === undefined || second === undefined) return screenPaths.diff(agentId, selected[0], selected[1]);
    return first > second ? screenPaths.diff(agentId, selected[0], selected[1]) : screenPaths.diff(agentId, selected[1], selected[0]);
  })();
  const describe = (version: AgentVersion) => `#${version.seq_no_in_branch} on ${branchName.get(version.branch_id) ?? version.branch_id}`;

  return (
    <Page
      title={agent.data ? `History of ${agent.data.name || 'Untitled'}` : 'History'}
      subtitle={
        <>
          <a href={screenPaths.agent(agentId)}>Branches</a> · every version of every branch, newest first
        </>
      }
      actions={
        <div class="compare-bar" aria-live="polite">
          <span class="muted small">{selected.length === 0 ? 'Pick two versions to compare' : `${selected.length} of 2 picked`}</span>
          {compareUrl ? (
            <a class="button button-primary" href={compareUrl}>
              Compare picked versions
            </a>
          ) : (
            <button type="button" class="button button-primary" disabled>
              Compare picked versions
            </button>
          )}
        </div>
      }
    >
      {agent.error && <ErrorPanel error={agent.error} title="The agent could not be loaded" onRetry={agent.reload} />}
      {history.error && <ErrorPanel error={history.error} title="The history could not be loaded" onRetry={history.versions.length ? history.loadOlder : history.reload} />}
      {/* Lanes are laid out from main's; rows name their branches: shown once both are known. */}
      {!(history.versions.length > 0 && ready) && (history.loading || !ready) && !history.error && <Loading label="Loading history…" />}
      {history.versions.length > 0 && ready && (
        <GraphList
          layout={layout}
          versions={history.versions}
          branchName={branchName}
          selected={selected}
          onToggle={toggle}
          agentId={agentId}
          writable={writable}
          onBranchFrom={(version) => setBranchFrom({ versionId: version.id, label: describe(version) })}
          describe={describe}
          nearEnd={history.loadOlder}
        />
      )}
      {history.versions.length > 0 && ready && (
        <div class="pager">
          <span class="muted small" role="status">
            {history.loading ? 'Loading older versions…' : `${history.versions.length} versions shown${history.hasMore ? '' : ' (all of them)'}`}
          </span>
          {history.hasMore && (
            <Button onClick={history.loadOlder} busy={history.loading}>
              Load older versions
            </Button>
          )}
        </div>
      )}
      <BranchFromVersion
        agentId={agentId}
        target={branchFrom}
        onClose={() => setBranchFrom(undefined)}
        onCreated={() => {
          // The new branch's name first, then the history that shows its version.
          void branches.reload().then(history.reload);
        }}
      />
    </Page>
  );
}

interface GraphListProps {
  layout: GraphLayout;
  versions: AgentVersion[];
  branchName: Map<string, string>;
  selected: string[];
  onToggle: (versionId: string) => void;
  agentId: string;
  writable: boolean;
  onBranchFrom: (version: AgentVersion) => void;
  describe: (version: AgentVersion) => string;
  /** Called when the rows near the end of what is loaded come into view. */
  nearEnd: () => void;
}

/** The rows in view (and a few either side) of a scroller as tall as every loaded row. */
function GraphList({ layout, versions, branchName, selected, onToggle, agentId, writable, onBranchFrom, describe, nearEnd }: GraphListProps) {
  const scroller = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 800 });
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const measure = () => setView({ top: element.scrollTop, height: element.clientHeight });
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  const first = Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(versions.length, Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN);
  useEffect(() => {
    if (last >= versions.length - OVERSCAN) nearEnd();
  }, [last, versions.length]);
  const width = graphWidth(layout.laneCount);

  return (
    <div class="graph-scroll" role="region" aria-label="Version graph" ref={scroller} onScroll={(event) => setView({ top: event.currentTarget.scrollTop, height: event.currentTarget.clientHeight })}>
      {/* Spacers are SVGs sized by attributes: the CSP allows no style attribute. */}
      <svg class="graph-spacer" width="1" height={first * ROW_HEIGHT} aria-hidden="true" />
      <ol class="graph-rows" start={first + 1} aria-label="Versions, newest first">
        {versions.slice(first, last).map((version, index) => {
          const row = first + index;
          const lane = layout.laneOf.get(version.branch_id) ?? 0;
          const isMerge = Boolean(version.parents.merged_from_version_id);
          const name = branchName.get(version.branch_id) ?? version.branch_id;
          const picked = selected.includes(version.id);
          return (
            <li key={version.id} class={`graph-row${picked ? ' is-picked' : ''}`} data-version-id={version.id}>
              <input
                type="checkbox"
                checked={picked}
                aria-label={`Pick ${describe(version)} to compare`}
                onChange={() => onToggle(version.id)}
              />
              <svg class="graph-slice" width={width} height={ROW_HEIGHT} viewBox={`0 ${row * ROW_HEIGHT} ${width} ${ROW_HEIGHT}`} aria-hidden="true">
                {layout.edgesByRow[row].map((edge, edgeIndex) => (
                  <path key={edgeIndex} class={`edge edge-${edge.kind} lane-${(edge.kind === 'branch-point' ? edge.fromLane : edge.toLane) % 8}`} d={edge.path} />
                ))}
                <circle class={`node lane-${lane % 8}${isMerge ? ' node-merge' : ''}`} cx={laneX(lane)} cy={rowY(row)} r={isMerge ? 6 : 5} />
              </svg>
              <div class="graph-text">
                <div>
                  <span class={`lane-badge lane-${lane % 8}`}>{name}</span> <a href={screenPaths.version(agentId, version.id)}>#{version.seq_no_in_branch}</a>{' '}
                  <span class="graph-description">{version.version_description || <span class="muted">No description</span>}</span>
                </div>
                <div class="muted small">
                  {isMerge && <span class="badge">merge of {branchName.get(version.parents.merged_from_branch_id ?? '') ?? 'a branch'}</span>}
                  {version.access_info?.creator_name ?? 'Unknown author'} · <RelativeTime seconds={version.time_committed_secs} />
                </div>
              </div>
              {writable && (
                <Button variant="quiet" class="graph-action" aria-label={`Branch from ${describe(version)}`} onClick={() => onBranchFrom(version)}>
                  Branch<span class="wide-only"> from here</span>
                </Button>
              )}
            </li>
          );
        })}
      </ol>
      <svg class="graph-spacer" width="1" height={(versions.length - last) * ROW_HEIGHT} aria-hidden="true" />
    </div>
  );
}
