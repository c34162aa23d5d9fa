import t from 'tap';
import { TransientMap } from '../../engine/transient-map.js';

void t.test('behaves as a Map through its rebuilds', (t) => {
  // Entries come and go as transactions do, many more deletions than a rebuild interval, while a
  // model Map gets the same operations.
  const map = new TransientMap<string, number>();
  const model = new Map<string, number>();
  let next = 0;
  const live: string[] = [];
  let deleteAnswersDiffer = 0;
  for (let round = 0; round < 20_000; round++) {
    const key = `t${next++}`;
    map.set(key, round);
    model.set(key, round);
    live.push(key);
    if (live.length > 50) {
      const gone = live.shift()!;
      if (map.delete(gone) !== model.delete(gone)) deleteAnswersDiffer++;
    }
    // Overwrites of a live key keep its place in the order.
    if (round % 7 === 0) {
      const key = live[live.length >> 1]!;
      map.set(key, -round);
      model.set(key, -round);
    }
  }
  t.equal(deleteAnswersDiffer, 0, 'delete answers as a Map does');
  t.equal(map.size, model.size);
  t.same([...map], [...model], 'same entries in insertion order');
  t.same([...map.keys()], [...model.keys()]);
  t.same([...map.values()], [...model.values()]);
  t.same([...map.entries()], [...model.entries()]);
  t.equal(map.get(live[0]!), model.get(live[0]!));
  t.ok(map.has(live[0]!));
  t.notOk(map.has('t0'), 'a deleted key is gone after rebuilds');
  t.equal(map.get('t0'), undefined);
  t.equal(map.delete('t0'), false, 'deleting a missing key reports false');
  t.end();
});

void t.test('clear empties it', (t) => {
  const map = new TransientMap<number, string>();
  for (let i = 0; i < 10; i++) map.set(i, String(i));
  map.clear();
  t.equal(map.size, 0);
  t.same([...map], []);
  map.set(1, 'one');
  t.same([...map], [[1, 'one']]);
  t.end();
});
