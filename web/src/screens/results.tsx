import { useLocation } from 'preact-iso';
import { useEffect, useMemo, useState } from 'preact/hooks';

import type { BranchSummary } from '../api/deploy';
import { branchesPath } from '../api/deploy';
import {
  actOnRollout,
  type Decision,
  type ExperimentResults,
  type GuardedRollout,
  type Interval,
  type MetricDefinition,
  type MetricResult,
  metricsPath,
  type NewRollout,
  resultsPath,
  rolloutsPath,
  startRollout,
} from '../api/results';
import { screenPaths } from '../history/paths';
import { canWrite, useSession } from '../session';
import { BranchOptions, Button, Confirm, ErrorPanel, Loading, Page, RelativeTime, Table, useNotice } from '../ui';
import { useApi } from '../use-api';

/** Results change as outcomes arrive: the screen reads them again this often while it is open. */
const REFRESH_MS = 30_000;
const ALPHAS = [0.01, 0.05, 0.1];
/** A new rollout's steps until the user changes them: the ramp the peers use (docs/experiments.md). */
const DEFAULT_STEPS = [10, 25, 50, 100];

/**
 * `/agents/:agent_id/results`: which branch serves callers better. A tile per metric with each
 * branch's estimate and the difference to the baseline, both with their always-valid intervals and
 * the decision; the traffic check (sample-ratio mismatch); and the agent's guarded rollouts with
 * their progress, events and controls. Baseline and α are in the query (`?baseline=&alpha=`).
 */
export function ResultsScreen({ agent_id: agentId }: { agent_id: string }) {
  const session = useSession();
  const { path, query, route } = useLocation();
  const writable = session ? canWrite(session.who.role) : false;
  const alpha = ALPHAS.includes(Number(query.alpha)) ? Number(query.alpha) : 0.05;

  const agent = useApi<{ name: string; main_branch_id: string }>(`/v1/convai/agents/${encodeURIComponent(agentId)}`);
  const branches = useApi<{ results: BranchSummary[] }>(branchesPath(agentId), { include_archived: true });
  const baseline = query.baseline || agent.data?.main_branch_id;
  const results = useApi<ExperimentResults>(baseline ? resultsPath(agentId) : undefined, { baseline_branch_id: baseline, alpha });
  const rollouts = useApi<{ guarded_rollouts: GuardedRollout[] }>(rolloutsPath(agentId));
  const metrics = useApi<{ metrics: MetricDefinition[] }>(metricsPath(agentId));
  useEffect(() => {
    const timer = setInterval(() => {
      results.reload();
      rollouts.reload();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [results.reload, rollouts.reload]);

  const allBranches = branches.data?.results ?? [];
  const names = useMemo(() => new Map(allBranches.map((branch) => [branch.id, branch.name])), [allBranches]);
  const nameOf = (branchId: string) => names.get(branchId) ?? branchId;
  const setQuery = (next: { baseline?: string; alpha?: number }) => {
    const params = new URLSearchParams();
    const nextBaseline = next.baseline ?? query.baseline;
    if (nextBaseline) params.set('baseline', nextBaseline);
    const nextAlpha = next.alpha ?? alpha;
    if (nextAlpha !== 0.05) params.set('alpha', String(nextAlpha));
    const search = params.toString();
    route(search ? `${path}?${search}` : path, true);
  };
  const reloadRollouts = () => {
    rollouts.reload();
    results.reload();
    branches.reload();
  };

  const loadError = agent.error ?? branches.error;
  const live = (rollouts.data?.guarded_rollouts ?? []).find((rollout) => rollout.status === 'running' || rollout.status === 'paused');
  return (
    <Page
      title="Results"
      subtitle={
        <>
          <a href={screenPaths.agent(agentId)}>{agent.data ? agent.data.name || 'Untitled agent' : agentId}</a> · which branch serves callers better
        </>
      }
      actions={
        <a class="button" href={screenPaths.deploy(agentId)}>
          Deploy
        </a>
      }
    >
      {loadError && <ErrorPanel error={loadError} title="The agent could not be loaded" onRetry={() => (agent.reload(), branches.reload())} />}
      <div class="toolbar">
        <label>
          Baseline{' '}
          <select value={baseline} onChange={(event) => setQuery({ baseline: (event.target as HTMLSelectElement).value })}>
            <BranchOptions branches={allBranches} />
          </select>
        </label>
        <label>
          α{' '}
          <select value={String(alpha)} onChange={(event) => setQuery({ alpha: Number((event.target as HTMLSelectElement).value) })}>
            {ALPHAS.map((value) => (
              <option key={value} value={String(value)}>
                {value}
              </option>
            ))}
          </select>
        </label>
        <Button onClick={results.reload} busy={results.loading}>
          Refresh
        </Button>
        {results.data && (
          <span class="muted small">
            Computed <RelativeTime seconds={results.data.computed_at_unix_secs} />; intervals stay valid however often you look.
          </span>
        )}
      </div>

      {results.error && <ErrorPanel error={results.error} title="The results could not be loaded" onRetry={results.reload} />}
      {!results.data && !results.error && <Loading label="Loading the results…" />}
      {results.data && <TrafficCheck results={results.data} nameOf={nameOf} />}
      {results.data && (
        <section aria-labelledby="metrics-heading">
          <h2 id="metrics-heading">Metrics</h2>
          {results.data.metrics.length === 0 ? (
            <p class="muted">No metrics yet.</p>
          ) : (
            <div class="metric-tiles">
              {results.data.metrics.map((metric) => (
                <MetricTile key={metric.metric_key} metric={metric} baselineId={results.data!.baseline_branch_id} alpha={results.data!.alpha} nameOf={nameOf} />
              ))}
            </div>
          )}
        </section>
      )}

      <section aria-labelledby="rollouts-heading">
        <h2 id="rollouts-heading">Guarded rollouts</h2>
        {rollouts.error && <ErrorPanel error={rollouts.error} title="The rollouts could not be loaded" onRetry={rollouts.reload} />}
        {rollouts.data && (
          <>
            {live && <RolloutCard agentId={agentId} rollout={live} nameOf={nameOf} writable={writable} onChanged={reloadRollouts} />}
            {!live && writable && metrics.data && agent.data && branches.data && (
              <RolloutForm
                agentId={agentId}
                branches={allBranches.filter((branch) => !branch.is_archived)}
                mainId={agent.data.main_branch_id}
                metrics={metrics.data.metrics}
                alpha={alpha}
                onStarted={reloadRollouts}
              />
            )}
            <RolloutHistory rollouts={rollouts.data.guarded_rollouts.filter((rollout) => rollout !== live)} nameOf={nameOf} />
          </>
        )}
      </section>
    </Page>
  );
}

function TrafficCheck({ results, nameOf }: { results: ExperimentResults; nameOf: (id: string) => string }) {
  const srm = results.sample_ratio_mismatch;
  return (
    <section aria-labelledby="traffic-heading">
      <h2 id="traffic-heading">Traffic</h2>
      {srm.mismatch ? (
        <p class="srm srm-mismatch" role="alert">
          <strong>Sample ratio mismatch.</strong> Conversations do not reach the branches in the proportions deployed (evidence {formatNumber(srm.e_value)} ≥{' '}
          {formatNumber(1 / srm.alpha)}): the results below may be biased. Look for a runtime that pins a branch, or lost exposures.
        </p>
      ) : (
        <p class="srm muted small">Traffic matches the deployed split (sample-ratio check, α = {srm.alpha}).</p>
      )}
      <Table
        caption="Exposures per branch"
        rows={results.branches}
        rowKey={(row) => row.branch_id}
        empty="No conversation has been routed yet."
        columns={[
          { header: 'Branch', cell: (row) => nameOf(row.branch_id) },
          { header: 'Conversations', class: 'num', cell: (row) => row.exposures.toLocaleString() },
          { header: 'Expected share', class: 'num', cell: (row) => formatShare(row.expected_share) },
          { header: 'Observed share', class: 'num', cell: (row) => formatShare(row.observed_share) },
          { header: 'With outcomes', class: 'num', cell: (row) => formatShare(row.outcome_coverage) },
        ]}
      />
    </section>
  );
}

const DECISION_TEXT: Record<Decision, string> = { better: 'better', worse: 'worse', inconclusive: 'not yet clear' };

/** One metric: each branch's estimate, and each branch against the baseline, as interval bands. */
function MetricTile({ metric, baselineId, alpha, nameOf }: { metric: MetricResult; baselineId: string; alpha: number; nameOf: (id: string) => string }) {
  const format = (value: number) => (metric.kind === 'binary' ? formatShare(value) : formatNumber(value));
  const formatDifference = (value: number) => (metric.kind === 'binary' ? `${value >= 0 ? '+' : ''}${formatNumber(value * 100)} pts` : `${value >= 0 ? '+' : ''}${formatNumber(value)}`);
  const bands = metric.comparisons.filter((comparison) => comparison.interval !== null).map((comparison) => comparison.interval!);
  return (
    <article class="card metric-tile" aria-label={metric.name}>
      <header>
        <h3>{metric.name}</h3>
        <span class="muted small">
          {metric.kind === 'binary' ? 'rate' : 'mean'} · {metric.higher_is_better ? 'higher is better' : 'lower is better'}
        </span>
      </header>
      <table class="table metric-arms">
        <caption class="visually-hidden">{metric.name} per branch</caption>
        <thead>
          <tr>
            <th scope="col">Branch</th>
            <th scope="col" class="num">
              n
            </th>
            <th scope="col" class="num">
              {metric.kind === 'binary' ? 'Rate' : 'Mean'}
            </th>
            <th scope="col">{Math.round((1 - alpha) * 100)}% interval</th>
          </tr>
        </thead>
        <tbody>
          {metric.branches.map((arm) => (
            <tr key={arm.branch_id}>
              <td>
                {nameOf(arm.branch_id)}
                {arm.branch_id === baselineId && (
                  <>
                    {' '}
                    <span class="badge">baseline</span>
                  </>
                )}
              </td>
              <td class="num">{arm.n.toLocaleString()}</td>
              <td class="num">{arm.estimate === null ? '—' : format(arm.estimate)}</td>
              <td class="muted small">{arm.interval ? `${format(arm.interval.lower)} to ${format(arm.interval.upper)}` : 'too few outcomes'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {metric.comparisons
        .filter((comparison) => comparison.branch_id !== baselineId)
        .map((comparison) => (
          <div key={comparison.branch_id} class="comparison">
            <div class="comparison-head">
              <span>
                {nameOf(comparison.branch_id)} vs {nameOf(baselineId)}:{' '}
                <strong>{comparison.difference === null ? '—' : formatDifference(comparison.difference)}</strong>
              </span>
              <span class={`badge decision decision-${comparison.decision}`}>{DECISION_TEXT[comparison.decision]}</span>
            </div>
            <IntervalBand interval={comparison.interval} estimate={comparison.difference} scale={bands} higherIsBetter={metric.higher_is_better} label={`${nameOf(comparison.branch_id)} minus ${nameOf(baselineId)}`} />
            <p class="muted small">
              {comparison.interval ? `${formatDifference(comparison.interval.lower)} to ${formatDifference(comparison.interval.upper)}` : 'Not enough outcomes for an interval yet.'}
            </p>
          </div>
        ))}
    </article>
  );
}

/**
 * The difference's interval as a band around zero: green on the better side, red on the worse, so
 * that a band that does not cross the zero line is a decision.
 */
function IntervalBand({ interval, estimate, scale, higherIsBetter, label }: { interval: Interval | null; estimate: number | null; scale: Interval[]; higherIsBetter: boolean; label: string }) {
  if (!interval || estimate === null) return <div class="band band-empty" aria-hidden="true" />;
  const reach = Math.max(1e-9, ...scale.map((band) => Math.max(Math.abs(band.lower), Math.abs(band.upper))));
  const x = (value: number) => 50 + (Math.max(-reach, Math.min(reach, value)) / reach) * 46;
  const better = higherIsBetter ? interval.lower > 0 : interval.upper < 0;
  const worse = higherIsBetter ? interval.upper < 0 : interval.lower > 0;
  return (
    <svg class="band" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label={`${label}: from ${interval.lower} to ${interval.upper}`}>
      <rect class={`band-range${better ? ' is-better' : worse ? ' is-worse' : ''}`} x={x(interval.lower)} y={2} width={Math.max(0.5, x(interval.upper) - x(interval.lower))} height={6} />
      <line class="band-zero" x1={50} x2={50} y1={0} y2={10} />
      <line class="band-estimate" x1={x(estimate)} x2={x(estimate)} y1={1} y2={9} />
    </svg>
  );
}

function RolloutCard({ agentId, rollout, nameOf, writable, onChanged }: { agentId: string; rollout: GuardedRollout; nameOf: (id: string) => string; writable: boolean; onChanged: () => void }) {
  const notices = useNotice();
  const [confirming, setConfirming] = useState(false);
  const detail = useApi<GuardedRollout>(`${rolloutsPath(agentId)}/${encodeURIComponent(rollout.guarded_rollout_id)}`);
  const act = async (action: 'pause' | 'resume' | 'rollback') => {
    await actOnRollout(agentId, rollout.guarded_rollout_id, action);
    notices.success(action === 'rollback' ? 'Rolled back: the split from before the rollout is live again.' : action === 'pause' ? 'Rollout paused.' : 'Rollout resumed.');
    detail.reload();
    onChanged();
  };
  const events = detail.data?.events ?? [];
  return (
    <article class="card rollout" aria-label="Guarded rollout in progress">
      <header class="rollout-head">
        <h3>
          {nameOf(rollout.branch_id)} against {nameOf(rollout.baseline_branch_id)}
        </h3>
        <span class={`badge rollout-${rollout.status}`}>{rollout.status}</span>
      </header>
      <ol class="rollout-steps" aria-label="Steps">
        {rollout.steps.map((step, index) => (
          <li key={index} class={index < rollout.current_step ? 'is-done' : index === rollout.current_step ? 'is-current' : ''} aria-current={index === rollout.current_step ? 'step' : undefined}>
            <strong>{step.traffic_percentage}%</strong>
            <span class="muted small">
              ≥ {formatDuration(step.min_duration_secs)}, ≥ {step.min_outcomes_per_branch} outcomes per branch
            </span>
          </li>
        ))}
      </ol>
      <p class="muted small">
        Guarding {rollout.guard_metrics.map((guard) => `${guard.metric_key} (at most ${guard.max_regression} worse)`).join(', ')} · step started{' '}
        <RelativeTime seconds={rollout.step_started_at_unix_secs} />
      </p>
      {writable && (
        <div class="toolbar">
          {rollout.status === 'running' ? <Button onClick={() => act('pause')}>Pause</Button> : <Button onClick={() => act('resume')}>Resume</Button>}
          <Button variant="danger" onClick={() => setConfirming(true)}>
            Roll back
          </Button>
        </div>
      )}
      <RolloutEvents events={events} />
      <Confirm open={confirming} title="Roll this rollout back?" confirmLabel="Roll back" danger onConfirm={() => act('rollback')} onClose={() => setConfirming(false)}>
        <p>The split from before the rollout goes live again at once, and the rollout ends.</p>
      </Confirm>
    </article>
  );
}

function RolloutEvents({ events }: { events: GuardedRollout['events'] }) {
  if (!events || events.length === 0) return null;
  return (
    <ol class="rollout-events" aria-label="Rollout events">
      {[...events].reverse().map((event, index) => (
        <li key={index}>
          <span class={`badge event-${event.type}`}>{event.type.replace('_', ' ')}</span> <RelativeTime seconds={event.at_unix_secs} /> · step {event.step + 1} ·{' '}
          {event.reason}
        </li>
      ))}
    </ol>
  );
}

function RolloutHistory({ rollouts, nameOf }: { rollouts: GuardedRollout[]; nameOf: (id: string) => string }) {
  if (rollouts.length === 0) return null;
  return (
    <Table
      caption="Earlier guarded rollouts"
      rows={rollouts}
      rowKey={(rollout) => rollout.guarded_rollout_id}
      empty=""
      columns={[
        { header: 'Started', cell: (rollout) => <RelativeTime seconds={rollout.started_at_unix_secs} /> },
        { header: 'Branch', cell: (rollout) => `${nameOf(rollout.branch_id)} vs ${nameOf(rollout.baseline_branch_id)}` },
        { header: 'Outcome', cell: (rollout) => <span class={`badge rollout-${rollout.status}`}>{rollout.status.replace('_', ' ')}</span> },
        { header: 'Reached', cell: (rollout) => `${rollout.steps[Math.min(rollout.current_step, rollout.steps.length - 1)]?.traffic_percentage ?? 0}%` },
      ]}
    />
  );
}

function RolloutForm({ agentId, branches, mainId, metrics, alpha, onStarted }: { agentId: string; branches: BranchSummary[]; mainId: string; metrics: MetricDefinition[]; alpha: number; onStarted: () => void }) {
  const notices = useNotice();
  const candidates = branches.filter((branch) => branch.id !== mainId);
  const [chosenId, setBranchId] = useState(candidates[0]?.id ?? '');
  // What the select shows: the choice while it is a candidate, else the first (as the browser shows it).
  const branchId = candidates.some((branch) => branch.id === chosenId) ? chosenId : (candidates[0]?.id ?? '');
  const [steps, setSteps] = useState(DEFAULT_STEPS.join(', '));
  const [minutes, setMinutes] = useState(60);
  const [minOutcomes, setMinOutcomes] = useState(100);
  const [guards, setGuards] = useState<Record<string, number | undefined>>({ call_successful: 0 });
  const [error, setError] = useState<unknown>();
  if (candidates.length === 0) return <p class="muted">Create a branch to roll it out under guard.</p>;
  const submit = async () => {
    const percentages = steps.split(',').map((part) => Number(part.trim())).filter((value) => Number.isFinite(value) && value > 0);
    const rollout: NewRollout = {
      branch_id: branchId,
      baseline_branch_id: mainId,
      steps: percentages.map((traffic_percentage) => ({ traffic_percentage, min_duration_secs: minutes * 60, min_outcomes_per_branch: minOutcomes })),
      guard_metrics: Object.entries(guards)
        .filter(([, maxRegression]) => maxRegression !== undefined)
        .map(([metric_key, max_regression]) => ({ metric_key, max_regression: max_regression! })),
      alpha,
    };
    setError(undefined);
    try {
      await startRollout(agentId, rollout);
      notices.success('Guarded rollout started: its first step is live.');
      onStarted();
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <form class="card rollout-form" onSubmit={(event) => (event.preventDefault(), submit())} aria-label="Start a guarded rollout">
      <h3>Start a guarded rollout</h3>
      <p class="muted small">Traffic moves from main to the branch step by step; a regression on a guarded metric, or traffic that does not match the split, rolls it back by itself.</p>
      {error !== undefined && <ErrorPanel error={error} title="The rollout could not start" />}
      <label>
        Branch{' '}
        <select value={branchId} onChange={(event) => setBranchId((event.target as HTMLSelectElement).value)}>
          <BranchOptions branches={candidates} />
        </select>
      </label>
      <label>
        Steps (% of traffic) <input value={steps} onInput={(event) => setSteps((event.target as HTMLInputElement).value)} />
      </label>
      <label>
        At least (minutes per step) <input type="number" min={0} value={minutes} onInput={(event) => setMinutes(Number((event.target as HTMLInputElement).value))} />
      </label>
      <label>
        At least (outcomes per branch) <input type="number" min={0} value={minOutcomes} onInput={(event) => setMinOutcomes(Number((event.target as HTMLInputElement).value))} />
      </label>
      <fieldset>
        <legend>Guard metrics (largest regression allowed)</legend>
        {metrics.map((metric) => (
          <label key={metric.metric_key} class="checkbox">
            <input
              type="checkbox"
              checked={guards[metric.metric_key] !== undefined}
              onChange={(event) => setGuards({ ...guards, [metric.metric_key]: (event.target as HTMLInputElement).checked ? 0 : undefined })}
            />
            {metric.name}
            {guards[metric.metric_key] !== undefined && (
              <input
                type="number"
                step="any"
                min={0}
                aria-label={`Largest regression allowed for ${metric.name}`}
                value={guards[metric.metric_key]}
                onInput={(event) => setGuards({ ...guards, [metric.metric_key]: Number((event.target as HTMLInputElement).value) })}
              />
            )}
          </label>
        ))}
      </fieldset>
      <Button type="submit" variant="primary">
        Start
      </Button>
    </form>
  );
}

function formatShare(value: number | null): string {
  return value === null ? '—' : `${formatNumber(value * 100)}%`;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '−∞';
  const abs = Math.abs(value);
  return abs >= 1e6 ? value.toExponential(2) : String(Math.round(value * (abs >= 100 ? 1 : 100)) / (abs >= 100 ? 1 : 100));
}

function formatDuration(seconds: number): string {
  return seconds >= 3600 ? `${Math.round((seconds / 3600) * 10) / 10} h` : seconds >= 60 ? `${Math.round(seconds / 60)} min` : `${seconds} s`;
}
