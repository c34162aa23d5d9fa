/**
 * Programs with mistakes that must not compile. Each wrong line follows a `// @ts-expect-error`
 * comment; test/types/types.test.ts checks that each such line fails without its comment and that
 * nothing else does. Never run (no test imports it); `tsc -p .` checks it too.
 */
import {
  defineFunction,
  defineJob,
  defineRouter,
  egressType,
  listState,
  mapState,
  memoryEgress,
  memoryIngress,
  routeTo,
  sagaCoordinator,
  tpcCoordinator,
  valueState,
} from '../../index.js';

type CounterOp = { op: 'add'; amount: number } | { op: 'reset' };
interface Total {
  id: string;
  total: number;
}

const totals = memoryEgress<Total>('totals');
const orders = memoryIngress<{ customer: string; amount: number }>('orders');

export const counter = defineFunction({
  type: 'types/counter',
  state: { total: valueState<number>() },
  egresses: { totals, audit: egressType<string>() },
  handler(ctx, message: CounterOp) {
    const total = message.op === 'add' ? (ctx.state.total.get() ?? 0) + message.amount : 0;
    ctx.state.total.set(total);
    ctx.egress('totals', { id: ctx.self.id, total });
    ctx.egress('audit', `${ctx.self.id} ${total}`);
    ctx.send(counter.address('other'), { op: 'reset' });
    ctx.sendAfter(10, ctx.self, { op: 'add', amount: 1 });
    // The dynamic case stays open: a plain address takes any message.
    ctx.send({ type: 'types/counter', id: 'x' }, 'anything');

    // @ts-expect-error a misspelt egress name
    ctx.egress('total', { id: ctx.self.id, total });
    // @ts-expect-error a record of the wrong shape
    ctx.egress('totals', { id: ctx.self.id, sum: total });
    // @ts-expect-error a record of the wrong type for a declared egressType
    ctx.egress('audit', total);
    // @ts-expect-error a message the target does not take
    ctx.send(counter.address('other'), { op: 'add' });
    // @ts-expect-error a message the target does not take, sent later
    ctx.sendAfter(10, counter.address('other'), { op: 'subtract', amount: 1 });
    // @ts-expect-error ctx.self is typed too
    ctx.sendAfter(10, ctx.self, 'reset');
    // @ts-expect-error state keeps its declared type
    ctx.state.total.set('zero');
  },
  onInvocationFailed(ctx, _error, message) {
    // @ts-expect-error the failure handler gets the same typed egresses
    ctx.egress('totalz', { id: ctx.self.id, total: message.op === 'add' ? message.amount : 0 });
  },
});

export const collections = defineFunction({
  type: 'types/collections',
  state: { counts: mapState<string, number>(), seen: listState<{ at: number }>() },
  async handler(ctx, item: string) {
    ctx.state.counts.set(item, (ctx.state.counts.get(item) ?? 0) + 1);
    ctx.state.seen.append({ at: Date.now() });
    const entries: Array<[string, number]> = await ctx.state.counts.entries();
    const total: number = entries.reduce((sum, [, n]) => sum + n, ctx.state.seen.values().length);
    // @ts-expect-error a map value keeps its declared type
    ctx.state.counts.set(item, 'one');
    // @ts-expect-error a map key keeps its declared type
    ctx.state.counts.set(total, 1);
    // @ts-expect-error a map read returns the value type (or undefined)
    const wrong: string | undefined = ctx.state.counts.get(item);
    // @ts-expect-error whole-map reads are async: entries() is a promise
    for (const [k] of ctx.state.counts.entries()) void k;
    // @ts-expect-error a list takes only its element type
    ctx.state.seen.append('now');
    // @ts-expect-error a list is not a map
    ctx.state.seen.set('x', 1);
    // @ts-expect-error a map is not a value
    ctx.state.counts.set(1);
    void wrong;
  },
});

// Functions that declare no egresses keep the unchecked ctx.egress.
export const loose = defineFunction<string>({
  type: 'types/loose',
  handler(ctx, message) {
    ctx.egress('anything', message.length);
  },
});

export const transfer = tpcCoordinator(
  'types/transfer',
  (ctx, request: { from: string; to: string; amount: number }) => {
    ctx.invoke(counter.address(request.to), { op: 'add', amount: request.amount });
    // @ts-expect-error invoke checks the participant's message type
    ctx.invoke(counter.address(request.from), { op: 'add', amount: String(request.amount) });
    ctx.onSuccess.egress('totals', { id: request.to, total: request.amount });
    // @ts-expect-error outcome effects use the coordinator's declared egresses
    ctx.onFailure.egress('totalss', { id: request.to, total: 0 });
    // @ts-expect-error outcome sends are typed by address
    ctx.onRetryable.sendAfter(5, ctx.self, { from: request.from });
  },
  { egresses: { totals } },
);

export const saga = sagaCoordinator('types/saga', (ctx, request: { id: string; amount: number }) => {
  ctx.invokePair(counter.address(request.id), { op: 'add', amount: request.amount }, { op: 'reset' });
  // @ts-expect-error a compensation the participant does not take
  ctx.invokePair(counter.address(request.id), { op: 'add', amount: request.amount }, { op: 'undo' });
  // @ts-expect-error coordinator addresses are typed by their requests
  ctx.onSuccess.send(transfer.address('t1'), { id: request.id });
});

export const byIngress = defineRouter(orders, (order) => routeTo(counter.address(order.customer), { op: 'add', amount: order.amount }));
// @ts-expect-error a router defined with its ingress gets that ingress's record type
export const wrongField = defineRouter(orders, (order) => routeTo(counter.address(order.client), { op: 'reset' }));
// @ts-expect-error a route's message must be what its target takes
export const wrongRoute = defineRouter(orders, (order) => routeTo(counter.address(order.customer), { op: 'add', amount: `${order.amount}` }));
// @ts-expect-error a router's record type must match its ingress's
export const wrongRecord = defineRouter(orders, (order: { customer: number }) => routeTo(counter.address(String(order.customer)), { op: 'reset' }));

export default defineJob({
  name: 'types',
  module: import.meta.url,
  functions: [counter, collections, loose, transfer, saga],
  ingresses: [orders],
  routers: [byIngress],
  egresses: [totals, memoryEgress<string>('audit')],
});
