/** The per-function-type counts a worker keeps, and the router's blocked clock. */
import t from 'tap';
import { instancePrefix, timerKey, userStateKey } from '../../../engine/state/state-keys.js';
import { BlockedClock, FunctionStats, HANDLER_BUCKETS_MS } from '../../../engine/runtime/worker-stats.js';

void t.test('state accesses are counted for the function type in the key, interleaved types and non-ASCII names included', async (t) => {
  const stats = new FunctionStats();
  stats.declare(['shop/cart', 'shop/käse', 'idle/never']);
  const cart = userStateKey(instancePrefix(3, 'shop/cart', 'u1'), 'items');
  const cheese = userStateKey(instancePrefix(9, 'shop/käse', 'gouda'), 'stock');
  const cartOther = userStateKey(instancePrefix(200, 'shop/cart', 'u2'), 'items');
  for (const key of [cart, cheese, cart, cartOther, cheese]) stats.stateAccess(key, 'read');
  stats.stateAccess(cheese, 'miss');
  stats.stateAccess(cart, 'write');
  stats.stateAccess(timerKey(3, 1000, 'shop/cart', 'u1', 'token'), 'write');
  const snapshot = stats.snapshot();
  t.same(Object.keys(snapshot).sort(), ['idle/never', 'shop/cart', 'shop/käse'], 'declared types have entries before anything happened, non-ASCII names decoded');
  t.same([snapshot['shop/cart']!.stateReads, snapshot['shop/cart']!.stateWrites, snapshot['shop/cart']!.stateCacheMisses], [3, 1, 0], 'cart: 3 reads, 1 write (the timer key is engine state, not counted)');
  t.same([snapshot['shop/käse']!.stateReads, snapshot['shop/käse']!.stateCacheMisses], [2, 1], 'käse: 2 reads, 1 miss');
  t.equal(snapshot['idle/never']!.invocations, 0);
});

void t.test('handler times land in their buckets; failures are counted', async (t) => {
  const stats = new FunctionStats();
  const now = performance.now();
  stats.invoked('a/b', now - 3, false);
  stats.invoked('a/b', now - 20_000, true);
  stats.invoked('a/b', now, false);
  const m = stats.snapshot()['a/b']!;
  t.equal(m.invocations, 3);
  t.equal(m.failures, 1);
  t.equal(m.handlerBuckets.length, HANDLER_BUCKETS_MS.length + 1, 'a bucket per bound and +Inf');
  t.equal(m.handlerBuckets.at(-1), 1, 'the 20 s one is in +Inf');
  t.equal(m.handlerBuckets[HANDLER_BUCKETS_MS.findIndex((bound) => bound >= 3)], 1, 'the 3 ms one in the first bucket at or above 3 ms');
  t.ok(m.handlerMsSum >= 20_003, 'the sum counts them all');
});

void t.test('the blocked clock adds up spells per reason, the current one included', async (t) => {
  const clock = new BlockedClock<'credits' | 'feedback'>();
  clock.mark('credits');
  await new Promise((resolve) => setTimeout(resolve, 30));
  clock.mark('credits');
  clock.mark(undefined);
  const credits = clock.ms('credits');
  t.ok(credits >= 25 && credits < 1000, `credits: ${credits} ms`);
  clock.mark('feedback');
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok(clock.ms('feedback') >= 15, 'a spell still running counts');
  t.equal(clock.ms('credits'), credits, 'and the other reason stays');
});
