/**
 * When a failed attempt of a job may restore its last checkpoint, and after how long: Flink's
 * failure-rate strategy. A job fails for good only when more than `maxFailures` failures fall
 * within any `intervalMs`, so a job that ran well for an hour is not one failure from dying. The
 * pause before a restore doubles with each failure that follows closely on the one before, and drops
 * back to `initialBackoffMs` once the job has run `backoffResetMs` without a failure.
 */
export interface RestartStrategyOptions {
  /** Failures allowed within `intervalMs`; one more fails the job. 0: the first failure fails it. Default: 10. */
  maxFailures?: number;
  /** The sliding window failures are counted in, in ms. Default: 60000. */
  intervalMs?: number;
  /** The pause before the first restore, in ms. Default: 100. */
  initialBackoffMs?: number;
  /** The pause never grows above this, in ms. Default: 5000. */
  maxBackoffMs?: number;
  /** After this long without a failure, in ms, the pause starts again from `initialBackoffMs`. Default: 10000. */
  backoffResetMs?: number;
}

export type ResolvedRestartStrategy = Required<RestartStrategyOptions>;

export const restartStrategyDefaults: ResolvedRestartStrategy = {
  maxFailures: 10,
  intervalMs: 60_000,
  initialBackoffMs: 100,
  maxBackoffMs: 5_000,
  backoffResetMs: 10_000,
};

export type RestartDecision = { restart: true; backoffMs: number; failuresInInterval: number } | { restart: false; reason: string };

export class RestartStrategy {
  /** When the failures within the current interval happened. */
  private failures: number[] = [];
  private backoffMs = 0;
  private lastFailure = -Infinity;

  constructor(
    private readonly options: ResolvedRestartStrategy,
    private readonly now: () => number = Date.now,
  ) {}

  /** A failed attempt: may the job restore, and after how long. */
  onFailure(): RestartDecision {
    const now = this.now();
    this.failures = this.failures.filter((at) => now - at < this.options.intervalMs);
    this.failures.push(now);
    const healthy = now - this.lastFailure >= this.options.backoffResetMs;
    this.lastFailure = now;
    if (this.failures.length > this.options.maxFailures) {
      return {
        restart: false,
        reason:
          `${this.failures.length} failures within ${this.options.intervalMs} ms, more than restartStrategy.maxFailures (${this.options.maxFailures}); ` +
          'fix the cause, or raise restartStrategy.maxFailures (eddy run --max-failures) or lower restartStrategy.intervalMs',
      };
    }
    this.backoffMs = healthy || this.backoffMs === 0 ? this.options.initialBackoffMs : Math.min(this.options.maxBackoffMs, this.backoffMs * 2);
    return { restart: true, backoffMs: this.backoffMs, failuresInInterval: this.failures.length };
  }
}
