import { useLocation } from 'preact-iso';
import { useLayoutEffect, useMemo } from 'preact/hooks';

import { type AgentVersion, type BranchList, branchesPath, type DiffChange, diffPath, type VersionDiff, versionPath } from '../api/history';
import { isLongText, WordDiff } from '../history/WordDiff';
import { screenPaths } from '../history/paths';
import { ErrorPanel, Loading, Page, RelativeTime } from '../ui';
import { settled, useApi } from '../use-api';

/** The sections in the order a reader expects them; a section the server adds later goes last. */
const SECTION_ORDER = ['agent', 'conversation_config', 'platform_settings', 'workflow', 'procedures'];
const SECTION_TITLES: Record<string, string> = {
  agent: 'Name and tags',
  conversation_config: 'Conversation config',
  platform_settings: 'Platform settings',
  workflow: 'Workflow',
  procedures: 'Procedures',
};

/**
 * `/agents/:agent_id/diff?from=&to=`: what changed from one stored version to another (the server's
 * `/diff`, never against whatever is current), grouped by section; long texts as a word diff.
 */
export function DiffScreen({ agent_id: agentId }: { agent_id: string }) {
  const { query } = useLocation();
  const from = query.from;
  const to = query.to;
  const both = Boolean(from && to);
  const diff = useApi<VersionDiff>(both ? diffPath(agentId) : undefined, { from_version_id: from, to_version_id: to });
  const fromVersion = useApi<AgentVersion>(from ? versionPath(agentId, from) : undefined);
  const toVersion = useApi<AgentVersion>(to ? versionPath(agentId, to) : undefined);
  const branches = useApi<BranchList>(branchesPath(agentId), { include_archived: true, limit: 100 });
  const branchName = (branchId: string) => branches.data?.results.find((branch) => branch.id === branchId)?.name ?? branchId;
  const label = (version: AgentVersion | undefined, id: string | undefined) => (version ? `#${version.seq_no_in_branch} on ${branchName(version.branch_id)}` : (id ?? ''));
  const fromLabel = label(fromVersion.data, from);
  const toLabel = label(toVersion.data, to);
  // The labels name branches: the screen shows once they are known, never ids first.
  const ready = settled(diff, fromVersion, toVersion, branches);

  // From the last of the screen's data to the diff on screen (bench/dashboard.bench.ts reads the first of each).
  const shown = ready && diff.data !== undefined;
  if (shown) performance.mark('branchwise:diff-data');
  useLayoutEffect(() => {
    if (shown) performance.mark('branchwise:diff-rendered');
  }, [shown]);

  const grouped = useMemo(() => groupBySection(diff.data?.changes ?? []), [diff.data]);

  if (!both) {
    return (
      <Page title="Compare versions">
        <p>
          Pick two versions in the <a href={screenPaths.history(agentId)}>history</a> to compare them.
        </p>
      </Page>
    );
  }
  return (
    <Page
      title="Compare versions"
      subtitle={
        <>
          <a href={screenPaths.history(agentId)}>History</a>
          {ready && (
            <>
              {' '}
              · from <VersionLink agentId={agentId} version={fromVersion.data} id={from!} label={fromLabel} /> to{' '}
              <VersionLink agentId={agentId} version={toVersion.data} id={to!} label={toLabel} />
            </>
          )}
        </>
      }
      actions={
        <a class="button" href={screenPaths.diff(agentId, to!, from!)}>
          Swap sides
        </a>
      }
    >
      {diff.error && <ErrorPanel error={diff.error} title="The diff could not be loaded" onRetry={diff.reload} />}
      {!ready && !diff.error && <Loading label="Comparing…" />}
      {ready && diff.data && (
        <div class="diff" aria-busy={diff.loading}>
          <p class="diff-summary" role="status">
            {diff.data.changes.length === 0
              ? 'These two versions have the same config.'
              : `${diff.data.changes.length} ${diff.data.changes.length === 1 ? 'change' : 'changes'} in ${grouped.length} ${grouped.length === 1 ? 'section' : 'sections'}`}
          </p>
          {grouped.map(([section, changes]) => (
            <section key={section} class="card diff-section" aria-labelledby={`diff-${section}`}>
              <h2 id={`diff-${section}`}>
                {SECTION_TITLES[section] ?? section} <span class="muted small">{changes.length}</span>
              </h2>
              {changes.map((change) => (
                <ChangeView key={change.path} change={change} fromLabel={fromLabel} toLabel={toLabel} />
              ))}
            </section>
          ))}
        </div>
      )}
    </Page>
  );
}

function VersionLink({ agentId, version, id, label }: { agentId: string; version: AgentVersion | undefined; id: string; label: string }) {
  return (
    <>
      <a href={screenPaths.version(agentId, id)}>{label}</a>
      {version && (
        <span class="muted">
          {' '}
          (<RelativeTime seconds={version.time_committed_secs} />)
        </span>
      )}
    </>
  );
}

function ChangeView({ change, fromLabel, toLabel }: { change: DiffChange; fromLabel: string; toLabel: string }) {
  const wordDiff = change.kind === 'changed' && isLongText(change.before) && isLongText(change.after);
  return (
    <div class={`change change-${change.kind}`}>
      <div class="change-head">
        <code class="change-path">{change.path || '(the whole section)'}</code> <span class={`badge badge-${change.kind}`}>{change.kind}</span>
      </div>
      {wordDiff ? (
        <WordDiff before={change.before as string} after={change.after as string} beforeLabel={fromLabel} afterLabel={toLabel} />
      ) : (
        <div class="side-by-side">
          <div class="side">
            <div class="side-label muted small">{fromLabel}</div>
            {change.kind === 'added' ? <p class="muted small">(not set)</p> : <pre class="value value-before">{show(change.before)}</pre>}
          </div>
          <div class="side">
            <div class="side-label muted small">{toLabel}</div>
            {change.kind === 'removed' ? <p class="muted small">(not set)</p> : <pre class="value value-after">{show(change.after)}</pre>}
          </div>
        </div>
      )}
    </div>
  );
}

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value, null, 2);
}

function groupBySection(changes: DiffChange[]): [string, DiffChange[]][] {
  const bySection = new Map<string, DiffChange[]>();
  for (const change of changes) {
    const list = bySection.get(change.section);
    if (list) list.push(change);
    else bySection.set(change.section, [change]);
  }
  const rank = (section: string) => (SECTION_ORDER.includes(section) ? SECTION_ORDER.indexOf(section) : SECTION_ORDER.length);
  return [...bySection.entries()].sort(([a], [b]) => rank(a) - rank(b));
}
