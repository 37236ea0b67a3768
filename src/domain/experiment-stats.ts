/**
 * The statistics of experiments: per-branch estimates, branch-minus-baseline differences with an
 * always-valid interval and a decision, guards, and the sample-ratio-mismatch check
 * (docs/experiments-statistics.md states the method, its assumptions and the simulations).
 *
 * Everything is computed from aggregates, the cells: per (deployment, branch) the exposures, the
 * number of units with a value `n`, `Σy` and `Σy²`. A unit's assignment probability is its
 * deployment's share for its branch (the split it was routed with), so inverse-probability weights
 * are per cell and every sum the estimators need is a sum over cells. Cells are summed over days by
 * the caller; rows for the same (deployment, branch) are added here too.
 */

import { BUCKETS, bucketCounts, type SplitItem } from './traffic-split.js';

/** Aggregates of one (deployment, branch): from the cells, summed over days. */
export interface ArmCell {
  deploymentId: string;
  branchId: string;
  exposures: number;
  n: number;
  sum: number;
  sumSquares: number;
}
/** The split a deployment routed with: branch id → share in 0..1 (sums to 1). */
export type DeploymentShares = ReadonlyMap<string, ReadonlyMap<string, number>>;

export type Decision = 'better' | 'worse' | 'inconclusive';
export interface Interval {
  lower: number;
  upper: number;
}

/** Per-branch mean (rate for a binary metric), weighted by the recorded probabilities. */
export interface ArmEstimate {
  branchId: string;
  n: number;
  estimate: number | null;
  interval: Interval | null;
}
/** Candidate minus baseline; "better" respects higherIsBetter. */
export interface Comparison {
  branchId: string;
  difference: number | null;
  interval: Interval | null;
  decision: Decision;
}

/**
 * `binary`: values are 0 or 1 (a rate); `mean`: any number. Left out, it is read from the cells: a
 * metric is binary when Σy² = Σy in every cell (true of 0/1 values; a coincidence otherwise, and
 * then only the stricter minimum below applies).
 */
export type MetricKind = 'binary' | 'mean';

/**
 * The confidence sequences are tightest at this many units with a value (all branches of the
 * deployments compared, together): where a guarded rollout's step or a two-week test usually
 * decides. Earlier they are wider than a fixed-horizon interval by a factor that shrinks to about
 * 1.5 here; later they widen only like √(log n).
 */
export const PLANNED_SAMPLE_SIZE = 2_000;

/**
 * No interval, and so no decision, before each arm has this many values; for a binary metric,
 * this many successes and this many failures (the reference's rule of thumb: the asymptotic
 * confidence sequence leans on the central limit theorem, which needs both outcomes seen often).
 */
export const MIN_VALUES_PER_ARM = 30;

/** The sample-ratio-mismatch check's default level: a false alarm in at most 1 of 1,000 experiments. */
export const SRM_ALPHA = 0.001;

/**
 * The Dirichlet prior of the mismatch test is centred on the expected shares with this total
 * weight: its spread (about ±√(p(1−p)/101), 5 points at 50/50) is the size of imbalance worth
 * finding fast; larger ones are found sooner still, smaller ones with more exposures.
 */
export const SRM_PRIOR_WEIGHT = 100;

/**
 * The probability a new unit lands on each branch under a split: its buckets over 10,000, which is
 * what routing draws from (decisions.md D15), not the percentage (33.333… % is 3,333 or 3,334
 * buckets). The shares to pass for a deployment.
 */
export function routedShares(split: readonly SplitItem[]): Map<string, number> {
  return new Map([...bucketCounts(split)].map(([branchId, buckets]) => [branchId, buckets / BUCKETS]));
}

/**
 * Per branch (in the order branches first appear: in the cells, then in the shares): `n` the values
 * weighed (those of deployments where the branch had a share), the weighted mean, and its interval
 * (null below the minimum). `kind` is the metric's; left out, it is read from the cells.
 */
export function armEstimates(
  cells: readonly ArmCell[],
  shares: DeploymentShares,
  alpha: number,
  kind: MetricKind = metricKindOf(cells),
): ArmEstimate[] {
  checkAlpha(alpha);
  const table = cellTable(cells, shares);
  return branchesOf(cells, shares).map((branchId) => armEstimate(table, branchId, alpha, kind));
}

/**
 * Every other branch minus the baseline, over the deployments where both had a share: the weighted
 * difference, its always-valid interval at level alpha (null below the minimum), and the decision
 * it supports. Same order and `kind` as armEstimates.
 */
export function compareToBaseline(
  cells: readonly ArmCell[],
  shares: DeploymentShares,
  baselineBranchId: string,
  alpha: number,
  higherIsBetter: boolean,
  kind: MetricKind = metricKindOf(cells),
): Comparison[] {
  checkAlpha(alpha);
  const table = cellTable(cells, shares);
  return branchesOf(cells, shares)
    .filter((branchId) => branchId !== baselineBranchId)
    .map((branchId) => comparison(table, branchId, baselineBranchId, alpha, higherIsBetter, kind));
}

/** Sample-ratio mismatch over exposures (not outcomes), sequential, alpha 0.001 by default. */
export interface SrmResult {
  mismatch: boolean;
  eValue: number;
  alpha: number;
  observed: Record<string, number>;
  expected: Record<string, number>;
}

/**
 * A sequential multinomial test per deployment (Lindon & Malek, arXiv:2011.03567): the Bayes factor
 * of a Dirichlet-multinomial mixture against the deployment's shares, a test martingale under the
 * null, so `eValue ≥ 1/alpha` is a false alarm with probability at most alpha however often it is
 * read (Ville's inequality). Deployments follow one another in time, so the product of their
 * e-values is again a test martingale over the whole stream.
 *
 * Exposures of a branch the deployment gave no share (a runtime that pins a branch reports them;
 * their probability is null) are not a random assignment: they are counted in `observed` but not
 * tested. `expected` is each branch's share of the tested exposures, summed over deployments.
 */
export function sampleRatioMismatch(
  exposures: readonly Pick<ArmCell, 'deploymentId' | 'branchId' | 'exposures'>[],
  shares: DeploymentShares,
  alpha: number = SRM_ALPHA,
): SrmResult {
  checkAlpha(alpha);
  // No prototype: a branch id is a key, whatever its text.
  const observed: Record<string, number> = Object.create(null);
  const expected: Record<string, number> = Object.create(null);
  const countsByDeployment = new Map<string, Map<string, number>>();
  for (const cell of exposures) {
    checkCount(cell.exposures, 'exposures');
    observed[cell.branchId] = (observed[cell.branchId] ?? 0) + cell.exposures;
    const share = shares.get(cell.deploymentId)?.get(cell.branchId) ?? 0;
    if (!(share > 0)) continue;
    let counts = countsByDeployment.get(cell.deploymentId);
    if (!counts) countsByDeployment.set(cell.deploymentId, (counts = new Map()));
    counts.set(cell.branchId, (counts.get(cell.branchId) ?? 0) + cell.exposures);
  }
  let logEValue = 0;
  for (const [deploymentId, counts] of countsByDeployment) {
    const split = shares.get(deploymentId)!;
    let total = 0;
    for (const count of counts.values()) total += count;
    let shareTotal = 0;
    for (const share of split.values()) if (share > 0) shareTotal += share;
    for (const [branchId, share] of split) {
      if (share > 0) expected[branchId] = (expected[branchId] ?? 0) + (share / shareTotal) * total;
    }
    logEValue += logDirichletMultinomialBayesFactor(split, counts);
  }
  for (const branchId of Object.keys(expected)) observed[branchId] ??= 0;
  for (const branchId of Object.keys(observed)) expected[branchId] ??= 0;
  // A JSON number must be finite: an overwhelming mismatch is reported as the largest double.
  const eValue = Math.min(Math.exp(logEValue), Number.MAX_VALUE);
  return { mismatch: logEValue >= -Math.log(alpha), eValue, alpha, observed, expected };
}

/**
 * A guard: regression beyond maxRegression (in the metric's units, ≥ 0), with the interval's evidence.
 * The whole always-valid interval must lie beyond the tolerated regression (LaunchDarkly's rule: a
 * regression is called when the difference is significantly worse than the threshold), so a guard
 * trips wrongly with probability at most alpha/2 (one side of the two-sided interval). No interval
 * (too few values) is no evidence: false.
 */
export function regressed(comparison: Comparison, maxRegression: number, higherIsBetter: boolean): boolean {
  if (!(Number.isFinite(maxRegression) && maxRegression >= 0)) {
    throw new RangeError(`maxRegression must be a finite number ≥ 0, got ${maxRegression}`);
  }
  const { interval } = comparison;
  if (!interval) return false;
  return higherIsBetter ? interval.upper < -maxRegression : interval.lower > maxRegression;
}

// ---------------------------------------------------------------------------------------------
// Confidence sequences

/**
 * ρ of the normal mixture that makes the confidence sequence tightest near `plannedSampleSize`
 * (Waudby-Smith et al., arXiv:2103.06476, choosing ρ for a target time n*:
 * ρ² = (−2 ln α + ln(−2 ln α + 1)) / n*; the tests check it against nearby values).
 */
export function mixtureRho(alpha: number, plannedSampleSize: number = PLANNED_SAMPLE_SIZE): number {
  const logTerm = -2 * Math.log(alpha);
  return Math.sqrt((logTerm + Math.log(logTerm + 1)) / plannedSampleSize);
}

/**
 * The half-width of the two-sided asymptotic confidence sequence for a mean after n observations
 * with standard deviation `sd` (Waudby-Smith et al., arXiv:2103.06476, the Gaussian-mixture
 * asymptotic CS, from Robbins' normal mixture): sd · √(2(nρ² + 1)/(n²ρ²) · ln(√(nρ² + 1)/α)).
 */
export function confidenceSequenceRadius(n: number, sd: number, alpha: number, rho: number): number {
  const nRho2 = n * rho * rho;
  return sd * Math.sqrt(((2 * (nRho2 + 1)) / (n * n * rho * rho)) * Math.log(Math.sqrt(nRho2 + 1) / alpha));
}

/**
 * The running sums of a per-unit pseudo-outcome over a population of `units`, whose mean is the
 * estimand; the asymptotic confidence sequence is centred on its mean, with its empirical spread.
 */
interface PseudoOutcomeSums {
  units: number;
  sum: number;
  sumSquares: number;
}

function asymptoticInterval(sums: PseudoOutcomeSums, alpha: number): { mean: number; interval: Interval } {
  const mean = sums.sum / sums.units;
  const variance = Math.max(0, sums.sumSquares / sums.units - mean * mean);
  const radius = confidenceSequenceRadius(sums.units, Math.sqrt(variance), alpha, mixtureRho(alpha));
  return { mean, interval: { lower: mean - radius, upper: mean + radius } };
}

// ---------------------------------------------------------------------------------------------
// Estimators
//
// For a branch b and a unit i of deployment d, with π_b(d) the share b had in d and A_i its branch,
// the augmented inverse-probability-weighted (AIPW) pseudo-outcome with a constant outcome model
// m_b(d) per deployment (Waudby-Smith et al., arXiv:2103.06476, its confidence sequences for the
// average treatment effect: any model keeps the mean; a good one narrows the interval) is
//
//   ψ_b,i = m_b(d) + (Y_i − m_b(d)) · 1[A_i = b] / π_b(d),        E[ψ_b] = E[Y(b)],
//
// and the difference φ_i = ψ_t,i − ψ_c,i. With m = 0 this is the plain IPW difference of the
// reference (Y·1[A=t]/π_t − Y·1[A=c]/π_c); with m_b(d) the branch's own mean in the deployment, the
// mean of φ is the deployment-stratified difference Σ_d N_d (ȳ_t,d − ȳ_c,d) / N, whose variance
// drops the (Y − 0)² terms that make plain IPW about twice as wide on a 50% rate. Units of other
// branches have ψ_b = m_b(d): the population is every unit with a value in the deployments where b
// (for φ: both branches) had traffic. The sums below need only n, Σy, Σy² per (deployment, branch).

interface Cell {
  n: number;
  sum: number;
  sumSquares: number;
}

/** Per deployment: its shares and its randomized cells (branches with a share > 0). */
interface DeploymentCells {
  shares: ReadonlyMap<string, number>;
  cells: Map<string, Cell>;
  /** Units with a value on any branch that had a share. */
  units: number;
}

function cellTable(cells: readonly ArmCell[], shares: DeploymentShares): Map<string, DeploymentCells> {
  const table = new Map<string, DeploymentCells>();
  for (const cell of cells) {
    checkCount(cell.n, 'n');
    if (!Number.isFinite(cell.sum) || !Number.isFinite(cell.sumSquares)) {
      throw new RangeError(`sum and sumSquares must be finite, got ${cell.sum} and ${cell.sumSquares}`);
    }
    const split = shares.get(cell.deploymentId);
    const share = split?.get(cell.branchId) ?? 0;
    // No share: exposures reported for a branch the split did not route to, not randomized.
    if (!split || !(share > 0) || cell.n === 0) continue;
    let deployment = table.get(cell.deploymentId);
    if (!deployment) table.set(cell.deploymentId, (deployment = { shares: split, cells: new Map(), units: 0 }));
    const existing = deployment.cells.get(cell.branchId);
    if (existing) {
      existing.n += cell.n;
      existing.sum += cell.sum;
      existing.sumSquares += cell.sumSquares;
    } else {
      deployment.cells.set(cell.branchId, { n: cell.n, sum: cell.sum, sumSquares: cell.sumSquares });
    }
    deployment.units += cell.n;
  }
  return table;
}

/** One arm's totals over the deployments given; its mean is the fallback outcome model. */
function armTotals(deployments: readonly DeploymentCells[], branchId: string): Cell {
  const totals = { n: 0, sum: 0, sumSquares: 0 };
  for (const deployment of deployments) {
    const cell = deployment.cells.get(branchId);
    if (!cell) continue;
    totals.n += cell.n;
    totals.sum += cell.sum;
    totals.sumSquares += cell.sumSquares;
  }
  return totals;
}

/**
 * One deployment's part of ψ_b: the outcome model m (the branch's mean in the deployment, or
 * `fallback` when it has no value there), the sum of the weighted residuals Σ(Y − m)/π over the
 * branch's units and the sum of their squares.
 */
function armPart(deployment: DeploymentCells, branchId: string, fallback: number) {
  const share = deployment.shares.get(branchId)!;
  const cell = deployment.cells.get(branchId);
  if (!cell) return { model: fallback, residual: 0, residualSquares: 0 };
  const model = cell.sum / cell.n;
  const centredSquares = Math.max(0, cell.sumSquares - 2 * model * cell.sum + cell.n * model * model);
  return { model, residual: (cell.sum - cell.n * model) / share, residualSquares: centredSquares / (share * share) };
}

function deploymentsWith(table: Map<string, DeploymentCells>, ...branchIds: string[]): DeploymentCells[] {
  return [...table.values()].filter((deployment) =>
    branchIds.every((branchId) => (deployment.shares.get(branchId) ?? 0) > 0),
  );
}

function armEstimate(table: Map<string, DeploymentCells>, branchId: string, alpha: number, kind: MetricKind): ArmEstimate {
  const deployments = deploymentsWith(table, branchId);
  const totals = armTotals(deployments, branchId);
  if (totals.n === 0) return { branchId, n: 0, estimate: null, interval: null };
  const fallback = totals.sum / totals.n;
  const sums: PseudoOutcomeSums = { units: 0, sum: 0, sumSquares: 0 };
  for (const deployment of deployments) {
    const part = armPart(deployment, branchId, fallback);
    // Σψ = N·m + Σr and Σψ² = N·m² + 2m·Σr + Σr², r the weighted residual of the branch's units.
    sums.units += deployment.units;
    sums.sum += deployment.units * part.model + part.residual;
    sums.sumSquares += deployment.units * part.model * part.model + 2 * part.model * part.residual + part.residualSquares;
  }
  const estimate = sums.sum / sums.units;
  if (!enoughEvidence(totals, kind)) return { branchId, n: totals.n, estimate, interval: null };
  const { interval } = asymptoticInterval(sums, alpha);
  return { branchId, n: totals.n, estimate, interval: kind === 'binary' ? clamp(interval, 0, 1) : interval };
}

function comparison(
  table: Map<string, DeploymentCells>,
  branchId: string,
  baselineBranchId: string,
  alpha: number,
  higherIsBetter: boolean,
  kind: MetricKind,
): Comparison {
  const deployments = deploymentsWith(table, branchId, baselineBranchId);
  const candidate = armTotals(deployments, branchId);
  const baseline = armTotals(deployments, baselineBranchId);
  if (candidate.n === 0 || baseline.n === 0) return { branchId, difference: null, interval: null, decision: 'inconclusive' };
  const sums: PseudoOutcomeSums = { units: 0, sum: 0, sumSquares: 0 };
  for (const deployment of deployments) {
    const t = armPart(deployment, branchId, candidate.sum / candidate.n);
    const c = armPart(deployment, baselineBranchId, baseline.sum / baseline.n);
    // φ = Δm + r: r = (Y − m_t)/π_t on the candidate's units, −(Y − m_c)/π_c on the baseline's, else 0.
    const modelDifference = t.model - c.model;
    const residual = t.residual - c.residual;
    sums.units += deployment.units;
    sums.sum += deployment.units * modelDifference + residual;
    sums.sumSquares +=
      deployment.units * modelDifference * modelDifference + 2 * modelDifference * residual + t.residualSquares + c.residualSquares;
  }
  const difference = sums.sum / sums.units;
  if (!enoughEvidence(candidate, kind) || !enoughEvidence(baseline, kind)) {
    return { branchId, difference, interval: null, decision: 'inconclusive' };
  }
  const asymptotic = asymptoticInterval(sums, alpha);
  const interval = kind === 'binary' ? clamp(asymptotic.interval, -1, 1) : asymptotic.interval;
  return { branchId, difference, interval, decision: decisionOf(interval, higherIsBetter) };
}

function decisionOf(interval: Interval, higherIsBetter: boolean): Decision {
  if (interval.lower > 0) return higherIsBetter ? 'better' : 'worse';
  if (interval.upper < 0) return higherIsBetter ? 'worse' : 'better';
  return 'inconclusive';
}

function enoughEvidence(arm: Cell, kind: MetricKind): boolean {
  if (kind === 'mean') return arm.n >= MIN_VALUES_PER_ARM;
  return arm.sum >= MIN_VALUES_PER_ARM && arm.n - arm.sum >= MIN_VALUES_PER_ARM;
}

/** Binary when every cell's values could all be 0 or 1: Σy² = Σy (to rounding). */
export function metricKindOf(cells: readonly Pick<ArmCell, 'sum' | 'sumSquares'>[]): MetricKind {
  const binary = cells.every((cell) => Math.abs(cell.sumSquares - cell.sum) <= 1e-9 * Math.max(1, Math.abs(cell.sum)));
  return binary ? 'binary' : 'mean';
}

/** Branches in the order they first appear: in the cells, then in the deployments' shares. */
function branchesOf(cells: readonly ArmCell[], shares: DeploymentShares): string[] {
  const seen = new Set<string>();
  for (const cell of cells) seen.add(cell.branchId);
  for (const split of shares.values()) for (const [branchId, share] of split) if (share > 0) seen.add(branchId);
  return [...seen];
}

function clamp(interval: Interval, lowest: number, highest: number): Interval {
  return { lower: Math.max(lowest, interval.lower), upper: Math.min(highest, interval.upper) };
}

function checkAlpha(alpha: number): void {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
}

function checkCount(value: number, name: string): void {
  if (!(Number.isInteger(value) && value >= 0)) throw new RangeError(`${name} must be an integer ≥ 0, got ${value}`);
}

// ---------------------------------------------------------------------------------------------
// Sample-ratio mismatch

/**
 * ln of the Bayes factor of counts x against shares p under a Dirichlet(a) prior, a_k = w·p_k
 * (Lindon & Malek, arXiv:2011.03567, the Dirichlet-multinomial test):
 * ln Γ(A) − ln Γ(A + n) + Σ_k [ln Γ(a_k + x_k) − ln Γ(a_k)] − Σ_k x_k ln p_k, A = Σ a_k = w.
 */
export function logDirichletMultinomialBayesFactor(
  shares: ReadonlyMap<string, number>,
  counts: ReadonlyMap<string, number>,
  priorWeight: number = SRM_PRIOR_WEIGHT,
): number {
  let priorTotal = 0;
  let total = 0;
  let logFactor = 0;
  for (const [branchId, share] of shares) {
    if (!(share > 0)) continue;
    const prior = priorWeight * share;
    const count = counts.get(branchId) ?? 0;
    priorTotal += prior;
    total += count;
    logFactor += logGamma(prior + count) - logGamma(prior) - count * Math.log(share);
  }
  // Shares that do not quite sum to 1 (rounded percentages) are renormalized by the prior total.
  return logFactor + logGamma(priorTotal) - logGamma(priorTotal + total) + total * Math.log(priorTotal / priorWeight);
}

const LANCZOS_G = 7;
const LANCZOS_COEFFICIENTS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0: the Lanczos approximation (g = 7, nine terms; about 15 significant digits). */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma needs x > 0, got ${x}`);
  // Reflection keeps the series accurate near 0: Γ(x)Γ(1 − x) = π / sin(πx).
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let series = LANCZOS_COEFFICIENTS[0];
  for (let k = 1; k < LANCZOS_COEFFICIENTS.length; k++) series += LANCZOS_COEFFICIENTS[k] / (z + k);
  const t = z + LANCZOS_G + 0.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(series);
}
