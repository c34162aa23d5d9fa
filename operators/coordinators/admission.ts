/** Below this share of transactions that waited for a lock, the limit grows; above the next, it shrinks. */
const GROW_BELOW = 0.4;
const SHRINK_ABOVE = 0.8;
/** Transactions one window of the limit judges: the limit's worth, within these bounds. */
const MIN_WINDOW = 16;
const MAX_WINDOW = 64;

/**
 * How many transactions a worker's coordinators start at once, between 1 and maxTransactionsPerWorker.
 * Many concurrent transactions amortize the per-batch costs when they touch different instances,
 * but over a few hot instances they only queue for each other's locks (at 100 keys, 256 at once
 * per worker gave 261 transfers/s, 16 gave 8244). So the limit follows contention: after each
 * window of ended transactions it halves when most of them waited for a lock (a convoy builds up
 * fast), and grows by a quarter when few did.
 */
export class AdmissionLimit {
  private limit: number;
  private ended = 0;
  private waited = 0;

  constructor(private readonly max: number) {
    this.limit = max;
  }

  get current(): number {
    return this.limit;
  }

  /** A transaction ended; `waited`: one of its PREPAREs queued behind another transaction. */
  transactionEnded(waited: boolean): void {
    this.ended++;
    if (waited) this.waited++;
    if (this.ended < Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, this.limit))) return;
    const share = this.waited / this.ended;
    if (share > SHRINK_ABOVE) this.limit = Math.max(1, Math.floor(this.limit / 2));
    else if (share < GROW_BELOW) this.limit = Math.min(this.max, Math.ceil(this.limit * 1.25));
    this.ended = 0;
    this.waited = 0;
  }
}
