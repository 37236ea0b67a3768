/**
 * How far a share (percent) seen over `sample` conversations may fall from the `expected` share:
 * five binomial standard deviations. Which conversation lands in which bucket depends on the agent
 * id, new each run, so a fixed tolerance fails now and then (a 6–14% window around 10% of 400 is
 * under 3σ: it failed CI once); five σ fails once in about 1.7 million checks.
 */
export function samplingTolerance(expected: number, sample: number): number {
  const share = expected / 100;
  return 5 * 100 * Math.sqrt((share * (1 - share)) / sample);
}
