import type { Address } from '../engine/function-type.js';
import type { KeyGroupRange } from '../engine/key-groups.js';
import type { StateStore } from '../engine/state/state-store.js';
import { decodeF64, encodeF64, keyGroupOfKey, keyGroupPrefix, Space, timerKey, tokenKey } from '../engine/state/state-keys.js';
import { decodeTimer, encodeTimer, type Envelope, type TimerEntry } from '../engine/wire/envelope.js';

interface Pending {
  fireAt: number;
  key: string;
}

/**
 * Delayed messages of the function instances a worker owns. Each is kept in keyed state under the
 * sender's key group (so it moves with the sender and survives restarts) plus a token index for
 * cancellation; the heap and the one `setTimeout` are only an index over that state.
 */
export class DelayedMessages {
  private readonly heap: Pending[] = [];
  /** Live timers by state key; a cancelled timer leaves a stale heap entry that firing skips. */
  private readonly live = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;
  /** Until `start()`: timers loaded from state must not fire before replayed work has been queued. */
  private stopped = true;
  fired = 0;
  scheduled = 0;

  constructor(
    private readonly store: StateStore,
    private readonly deliver: (envelope: Envelope) => void,
    private readonly afterFiring: () => void,
  ) {}

  get pending(): number {
    return this.live.size;
  }

  /** Indexes the timers already in state for the owned key groups. */
  async load(range: KeyGroupRange): Promise<void> {
    for (let kg = range.start; kg <= range.end; kg++) {
      for await (const [key, value] of this.store.scanPrefix(keyGroupPrefix(kg, Space.TIMER))) {
        const fireAt = decodeTimer(value).fireAt;
        this.live.set(key, fireAt);
        this.push({ fireAt, key });
      }
    }
  }

  /**
   * The delayed messages `owner` sent that are still pending, in fire order (a state lookup). The
   * token index is scanned as of this turn; one that fires meanwhile is left out.
   */
  async pendingOf(owner: Address, kg: number): Promise<TimerEntry[]> {
    const prefix = tokenKey(kg, owner.type, owner.id, '');
    const pending: TimerEntry[] = [];
    for await (const [key, fireAt] of this.store.scanLive(prefix)) {
      const token = Buffer.from(key.slice(prefix.length), 'latin1').toString('utf8');
      const timer = this.store.get(timerKey(kg, decodeF64(fireAt), owner.type, owner.id, token));
      if (timer !== undefined) pending.push(decodeTimer(timer));
    }
    return pending.sort((a, b) => a.fireAt - b.fireAt);
  }

  isPending(owner: Address, kg: number, token: string): boolean {
    return this.store.get(tokenKey(kg, owner.type, owner.id, token)) !== undefined;
  }

  schedule(owner: Address, kg: number, fireAt: number, token: string, envelope: Envelope): void {
    const key = timerKey(kg, fireAt, owner.type, owner.id, token);
    this.store.put(key, encodeTimer({ envelope, token, fireAt }));
    this.store.put(tokenKey(kg, owner.type, owner.id, token), encodeF64(fireAt));
    this.live.set(key, fireAt);
    this.push({ fireAt, key });
    this.scheduled++;
    this.arm();
  }

  cancel(owner: Address, kg: number, token: string): void {
    const indexKey = tokenKey(kg, owner.type, owner.id, token);
    const fireAtBytes = this.store.get(indexKey);
    if (fireAtBytes === undefined) return;
    const key = timerKey(kg, decodeF64(fireAtBytes), owner.type, owner.id, token);
    this.store.put(key, null);
    this.store.put(indexKey, null);
    this.live.delete(key);
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  /** Stops firing; pending timers stay in state and fire after the next start. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  private fireDue(): void {
    this.timer = undefined;
    this.armedFor = Infinity;
    if (this.stopped) return;
    const now = Date.now();
    let any = false;
    while (this.heap.length > 0 && this.heap[0]!.fireAt <= now) {
      const { key } = this.pop()!;
      if (!this.live.delete(key)) continue;
      const bytes = this.store.get(key);
      if (bytes === undefined) continue;
      const timer = decodeTimer(bytes);
      // Delete before delivering, so a delivery that schedules the same token again is allowed.
      this.store.put(key, null);
      this.store.put(tokenKey(keyGroupOfKey(key), timer.envelope.sourceType, timer.envelope.sourceId, timer.token), null);
      this.fired++;
      any = true;
      this.deliver(timer.envelope);
    }
    if (any) this.afterFiring();
    this.arm();
  }

  private arm(): void {
    if (this.stopped) return;
    while (this.heap.length > 0 && !this.live.has(this.heap[0]!.key)) this.pop();
    const next = this.heap[0];
    if (next === undefined || next.fireAt >= this.armedFor) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.armedFor = next.fireAt;
    this.timer = setTimeout(() => this.fireDue(), Math.min(Math.max(0, next.fireAt - Date.now()), 0x7fffffff));
  }

  private push(entry: Pending): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.fireAt <= entry.fireAt) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): Pending | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.fireAt < heap[left]!.fireAt ? right : left;
      if (heap[child]!.fireAt >= last.fireAt) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}
