/**
 * Delay before retry number `failures` (0-based) of a failed reconcile: exponential from
 * `initialMs`, capped at `maxMs`, with jitter in [d/2, d) so that a fleet of operators (or many
 * failures at once) does not retry in step, as client-go's workqueue rate limiters do.
 */
export function retryDelayMs(
  failures: number,
  o: { initialMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const d = Math.min(o.maxMs, o.initialMs * 2 ** Math.min(failures, 52));
  return Math.round(d / 2 + random() * (d / 2));
}
