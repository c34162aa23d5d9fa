import t, { type Test } from 'tap';
import fc from 'fast-check';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Mesh } from '../../../engine/channels/mesh.js';
import { type Batch, Channel, type Envelope } from '../../../engine/wire/envelope.js';

type DataChannel = typeof Channel.ROUTER | typeof Channel.FEEDBACK;
type Received = (to: number, from: number, batch: Batch) => void;

/**
 * `n` meshes in this thread, wired all-to-all with real MessageChannels as the workers are; `onBatch`
 * sees every batch with its receiver. Closed at teardown (open ports keep the process alive).
 */
function buildMesh(t: Test, n: number, batchSize: number, onBatch: Received): Mesh[] {
  const peers: Array<Array<MessagePort | undefined>> = Array.from({ length: n }, () => Array.from({ length: n }, () => undefined));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const { port1, port2 } = new MessageChannel();
      peers[i]![j] = port1;
      peers[j]![i] = port2;
    }
  }
  const meshes = peers.map((ports, self) => new Mesh(self, ports, batchSize, (from, batch) => onBatch(self, from, batch)));
  t.teardown(() => meshes.forEach((mesh) => mesh.close()));
  return meshes;
}

function envelope(from: number, to: number, channel: number, seq: number): Envelope {
  return {
    kind: 1,
    targetType: 'test/target',
    targetId: `${from}>${to}/${channel}#${seq}`,
    sourceType: '',
    sourceId: '',
    payload: Uint8Array.of(seq & 0xff),
    ingressTime: seq,
    origin: from,
    seq,
  };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

interface Push {
  from: number;
  to: number;
  channel: DataChannel;
  count: number;
  /** Let the event loop turn before this push (so scheduled flushes run in between). */
  yieldBefore: boolean;
}

/**
 * Pushes `pushes` through an n-node mesh and checks that each receiver sees every (sender, channel)
 * stream complete, in order, without duplicates, in batches no larger than batchSize. Returns a
 * description of the first violation, or undefined.
 */
async function runStreams(t: Test, n: number, batchSize: number, pushes: readonly Push[]): Promise<string | undefined> {
  const stream = (from: number, to: number, channel: number): string => `${from}>${to}/${channel}`;
  const received = new Map<string, number[]>();
  const problems: string[] = [];
  let total = 0;
  const meshes = buildMesh(t, n, batchSize, (to, from, batch) => {
    if (batch.channel !== Channel.ROUTER && batch.channel !== Channel.FEEDBACK) {
      problems.push(`unexpected channel ${batch.channel}`);
      return;
    }
    if (batch.envelopes.length === 0 || batch.envelopes.length > batchSize) problems.push(`batch of ${batch.envelopes.length} (batchSize ${batchSize})`);
    const key = stream(from, to, batch.channel);
    const list = received.get(key) ?? [];
    for (const e of batch.envelopes) {
      if (e.origin !== from || e.targetId !== `${key}#${e.seq}`) problems.push(`envelope ${e.targetId} from ${e.origin} arrived on ${key}`);
      list.push(e.seq);
    }
    received.set(key, list);
    total += batch.envelopes.length;
  });
  try {
    return await pushAndCheck(meshes, n, pushes, stream, received, problems, () => total);
  } finally {
    meshes.forEach((mesh) => mesh.close()); // now, not only at teardown: a property makes many meshes
  }
}

async function pushAndCheck(
  meshes: Mesh[],
  n: number,
  pushes: readonly Push[],
  stream: (from: number, to: number, channel: number) => string,
  received: ReadonlyMap<string, number[]>,
  problems: readonly string[],
  receivedTotal: () => number,
): Promise<string | undefined> {
  const next = new Map<string, number>();
  let expectedTotal = 0;
  for (const push of pushes) {
    if (push.yieldBefore) await new Promise((resolve) => setImmediate(resolve));
    const key = stream(push.from, push.to, push.channel);
    for (let i = 0; i < push.count; i++) {
      const seq = next.get(key) ?? 0;
      next.set(key, seq + 1);
      meshes[push.from]!.push(push.to, push.channel, envelope(push.from, push.to, push.channel, seq));
    }
    expectedTotal += push.count;
  }
  await waitFor(() => receivedTotal() >= expectedTotal || problems.length > 0, `${expectedTotal} envelopes`);
  await new Promise((resolve) => setTimeout(resolve, 5)); // anything extra (duplicates) would arrive now
  if (problems.length > 0) return problems[0];
  if (receivedTotal() !== expectedTotal) return `received ${receivedTotal()} envelopes, sent ${expectedTotal}`;
  for (const [key, count] of next) {
    const seqs = received.get(key) ?? [];
    const inOrder = seqs.length === count && seqs.every((seq, i) => seq === i);
    if (!inOrder) return `stream ${key}: sent 0..${count - 1}, received ${seqs.slice(0, 20).join(',')}${seqs.length > 20 ? ',...' : ''} (${seqs.length})`;
  }
  for (const from of meshes.keys()) {
    for (let to = 0; to < n; to++) {
      const pushed = pushes.filter((p) => p.from === from && p.to === to).reduce((sum, p) => sum + p.count, 0);
      if (meshes[from]!.sent[to] !== pushed) return `mesh ${from}.sent[${to}] is ${meshes[from]!.sent[to]}, pushed ${pushed}`;
    }
  }
  return undefined;
}

void t.test('each (sender, receiver, channel) stream arrives complete and in order: 3 nodes, batch size 7', async (t) => {
  // Thousands of envelopes, interleaving ROUTER and FEEDBACK, to peers and to self, in bursts that
  // fill batches and in single pushes left for the end-of-turn flush.
  const pushes: Push[] = [];
  let state = 12345;
  const random = (k: number): number => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return (state >>> 8) % k;
  };
  for (let i = 0; i < 1200; i++) {
    pushes.push({
      from: random(3),
      to: random(3),
      channel: random(2) === 0 ? Channel.ROUTER : Channel.FEEDBACK,
      count: random(4) === 0 ? 1 + random(20) : 1,
      yieldBefore: random(10) === 0,
    });
  }
  const total = pushes.reduce((sum, p) => sum + p.count, 0);
  t.ok(total > 2000, `${total} envelopes`);
  t.ok(pushes.some((p) => p.from === p.to), 'includes self-sends');
  t.equal(await runStreams(t, 3, 7, pushes), undefined);
});

void t.test('FIFO holds for random push sequences and batch sizes (property)', async (t) => {
  const push = fc.record({
    from: fc.integer({ min: 0, max: 2 }),
    to: fc.integer({ min: 0, max: 2 }),
    channel: fc.constantFrom<DataChannel>(Channel.ROUTER, Channel.FEEDBACK),
    count: fc.integer({ min: 1, max: 25 }),
    yieldBefore: fc.boolean(),
  });
  let lastProblem: string | undefined; // of the smallest failing case, once shrinking ends
  const details = await fc.check(
    fc.asyncProperty(fc.integer({ min: 1, max: 16 }), fc.array(push, { minLength: 1, maxLength: 60 }), async (batchSize, pushes) => {
      const problem = await runStreams(t, 3, batchSize, pushes);
      if (problem !== undefined) lastProblem = `batch size ${batchSize}: ${problem}`;
      return problem === undefined;
    }),
    { numRuns: 25 },
  );
  t.notOk(details.failed, details.failed ? `${lastProblem}\n${fc.defaultReportMessage(details)}` : 'property held');
});

void t.test('acknowledge delivers credits and feedback acks to the peer, and to itself', async (t) => {
  const acks: Array<{ to: number; from: number; channel: number; credits: number; feedbackAcks: number; envelopes: number }> = [];
  const meshes = buildMesh(t, 3, 4, (to, from, batch) => {
    acks.push({ to, from, channel: batch.channel, credits: batch.credits, feedbackAcks: batch.feedbackAcks, envelopes: batch.envelopes.length });
  });
  meshes[0]!.acknowledge(1, 5, 3);
  meshes[2]!.acknowledge(0, 4096, 0);
  meshes[1]!.acknowledge(1, 7, 2);
  meshes[0]!.acknowledge(1, 0, 9);
  await waitFor(() => acks.length >= 4, 'four acknowledgements');
  const sorted = [...acks].sort((a, b) => a.to - b.to || a.from - b.from || a.credits - b.credits);
  t.same(sorted, [
    { to: 0, from: 2, channel: Channel.ACK, credits: 4096, feedbackAcks: 0, envelopes: 0 },
    { to: 1, from: 0, channel: Channel.ACK, credits: 0, feedbackAcks: 9, envelopes: 0 },
    { to: 1, from: 0, channel: Channel.ACK, credits: 5, feedbackAcks: 3, envelopes: 0 },
    { to: 1, from: 1, channel: Channel.ACK, credits: 7, feedbackAcks: 2, envelopes: 0 },
  ]);
  const fromZero = acks.filter((a) => a.to === 1 && a.from === 0).map((a) => a.credits);
  t.same(fromZero, [5, 0], 'acknowledgements on one port arrive in order');
  t.same(meshes.map((m) => m.sent), [[0, 0, 0], [0, 0, 0], [0, 0, 0]], 'acknowledgements are not counted as sent envelopes');
});

void t.test('buffered envelopes leave without a full batch at the end of the turn, or at once on flush()', async (t) => {
  const arrivals: Array<{ to: number; from: number; seqs: number[] }> = [];
  const meshes = buildMesh(t, 2, 100, (to, from, batch) => arrivals.push({ to, from, seqs: batch.envelopes.map((e) => e.seq) }));
  meshes[0]!.push(1, Channel.ROUTER, envelope(0, 1, Channel.ROUTER, 0));
  meshes[0]!.push(1, Channel.ROUTER, envelope(0, 1, Channel.ROUTER, 1));
  await waitFor(() => arrivals.length > 0, 'the end-of-turn batch');
  t.same(arrivals, [{ to: 1, from: 0, seqs: [0, 1] }], 'two envelopes, one batch');
  arrivals.length = 0;
  meshes[1]!.push(0, Channel.FEEDBACK, envelope(1, 0, Channel.FEEDBACK, 0));
  meshes[1]!.flush();
  meshes[1]!.push(0, Channel.FEEDBACK, envelope(1, 0, Channel.FEEDBACK, 1));
  await waitFor(() => arrivals.length >= 2, 'two batches');
  t.same(arrivals, [{ to: 0, from: 1, seqs: [0] }, { to: 0, from: 1, seqs: [1] }], 'flush() cut the batch');
});
