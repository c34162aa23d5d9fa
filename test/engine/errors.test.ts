import t from 'tap';
import { describeError, EddyError, InvocationFailed } from '../../engine/errors.js';

void t.test('describeError names where a bug was thrown, and only for bugs', async (t) => {
  function handler(): never {
    throw new TypeError('x is undefined');
  }
  let bug: unknown;
  try {
    handler();
  } catch (error) {
    bug = error;
  }
  t.match(describeError(bug), /^TypeError: x is undefined \(at .*test\/engine\/errors\.test\.ts:\d+:\d+\)$/, 'file, line and column of the throw');
  t.equal(describeError(new EddyError('EDDY_INVALID_JOB', 'bad job')), 'EddyError: bad job', "the engine's errors explain themselves");
  t.equal(describeError(new InvocationFailed('no funds')), 'InvocationFailed: no funds', 'domain failures are not bugs');
  t.equal(describeError('plain'), 'plain');
  const internal = new Error('deep');
  internal.stack = 'Error: deep\n    at JSON.parse (<anonymous>)\n    at f (/app/node_modules/dep/index.js:1:2)\n    at g (file:///app/job.ts:3:4)';
  t.equal(describeError(internal), 'Error: deep (at file:///app/job.ts:3:4)', "Node's internals and dependencies are skipped");
  const wrapped = new Error('Database failed to open', { cause: new Error('IO error: /state/worker-0/LOCK: No space left on device') });
  wrapped.stack = 'Error: Database failed to open\n    at open (file:///app/backend.ts:13:5)';
  t.equal(describeError(wrapped), 'Error: Database failed to open: IO error: /state/worker-0/LOCK: No space left on device (at file:///app/backend.ts:13:5)', "a wrapper's cause says why");
});
