import { availableParallelism, loadavg } from 'node:os';

/**
 * How many times longer than on a quiet machine a wait may take here: the load per core when this
 * module was loaded, between 1 and 4 (`TEST_PATIENCE` sets it). A test's deadlines are there to
 * catch a hang or a broken promise ("refused within a second"), not to time the machine: on two
 * cores shared with other jobs, a 30 s test took over 90 s with nothing wrong.
 */
export const PATIENCE = Number(process.env.TEST_PATIENCE) || Math.min(4, Math.max(1, loadavg()[0] / availableParallelism()));

/** `ms`, stretched by `PATIENCE`. */
export function patient(ms: number): number {
  return Math.round(ms * PATIENCE);
}
