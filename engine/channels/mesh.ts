import type { MessagePort } from 'node:worker_threads';
import { type Batch, Channel, type ChannelId, decodeBatch, encodeBatch, type Envelope } from '../wire/envelope.js';

export type BatchHandler = (from: number, batch: Batch) => void;

/**
 * This worker's end of the all-to-all mesh. Envelopes are buffered per destination worker and logical
 * channel, and leave as one encoded, transferred ArrayBuffer when a buffer is full or at the end of
 * the current event-loop turn. One port per worker pair carries every channel, so FIFO holds per
 * (sender, receiver, channel), barriers included (acks carry only counts and may overtake data).
 * The self-channel skips encoding but keeps
 * the same batching and ordering (delivery in a later turn, in order).
 */
export class Mesh {
  /** Envelopes handed to `push`, per destination worker. */
  readonly sent: number[];
  private readonly buffers: Envelope[][][];
  private flushScheduled = false;
  private closed = false;

  constructor(
    private readonly self: number,
    private readonly peers: ReadonlyArray<MessagePort | undefined>,
    private readonly batchSize: number,
    private readonly onBatch: BatchHandler,
    /** Per channel and destination worker: ms its batches are held back (fault injection; 0: none). */
    private readonly delays: Partial<Record<ChannelId, readonly number[]>> = {},
  ) {
    this.sent = Array.from({ length: peers.length }, () => 0);
    this.buffers = Array.from({ length: peers.length }, () => [[], [], []]);
    peers.forEach((port, from) => {
      port?.on('message', (buffer: ArrayBuffer) => {
        if (!this.closed) this.onBatch(from, decodeBatch(buffer));
      });
    });
  }

  push(destination: number, channel: typeof Channel.ROUTER | typeof Channel.FEEDBACK, envelope: Envelope): void {
    const buffer = this.buffers[destination]![channel]!;
    buffer.push(envelope);
    this.sent[destination]!++;
    if (buffer.length >= this.batchSize) this.send(destination, channel, this.take(destination, channel));
    else this.scheduleFlush();
  }

  /**
   * Acknowledges envelopes taken in from `destination`: router credits go back to its router, and
   * feedback acks let it measure the feedback it has in flight (for ingress throttling).
   */
  acknowledge(destination: number, credits: number, feedbackAcks: number): void {
    const batch: Batch = { channel: Channel.ACK, envelopes: [], credits, feedbackAcks };
    if (destination === this.self) {
      this.onBatch(this.self, batch);
      return;
    }
    const buffer = encodeBatch(batch);
    this.peers[destination]!.postMessage(buffer, [buffer]);
  }

  /** Sends everything buffered now. */
  flush(): void {
    this.flushScheduled = false;
    for (let destination = 0; destination < this.buffers.length; destination++) {
      const channels = this.buffers[destination]!;
      if (channels[Channel.ROUTER]!.length > 0) this.send(destination, Channel.ROUTER, this.take(destination, Channel.ROUTER));
      if (channels[Channel.FEEDBACK]!.length > 0) this.send(destination, Channel.FEEDBACK, this.take(destination, Channel.FEEDBACK));
    }
  }

  /** Hands over a channel's buffer and starts a fresh one (no copy). */
  private take(destination: number, channel: number): Envelope[] {
    const channels = this.buffers[destination]!;
    const buffer = channels[channel]!;
    channels[channel] = [];
    return buffer;
  }

  close(): void {
    this.closed = true;
    for (const port of this.peers) port?.close();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private send(destination: number, channel: ChannelId, envelopes: Envelope[]): void {
    if (this.closed) return;
    const batch: Batch = { channel, envelopes, credits: 0, feedbackAcks: 0 };
    if (destination === this.self) {
      setImmediate(() => {
        if (!this.closed) this.onBatch(this.self, batch);
      });
      return;
    }
    const buffer = encodeBatch(batch);
    const port = this.peers[destination]!;
    const delay = this.delays[channel]?.[destination] ?? 0;
    // Timers of equal duration fire in the order they were set: a delayed channel stays FIFO.
    if (delay > 0) setTimeout(() => !this.closed && port.postMessage(buffer, [buffer]), delay);
    else port.postMessage(buffer, [buffer]);
  }
}
