import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openStateDir } from '../../../engine/runtime/state-dir.js';
import { tempDir } from '../../fixtures/harness.js';

void t.test('a state directory whose manifest cannot be written is refused with a code that names the file and the fix', (t) => {
  const dir = tempDir(t, 'state-unwritable');
  const first = openStateDir(dir, 'leveldb', 'job-a', 2, 128);
  // Its manifest is written through a temporary file: a folder in that place makes the write fail.
  t.equal(first.manifest.job, 'job-a');
  const blocker = join(dir, 'eddy-state.json.tmp');
  mkdirSync(blocker);
  t.throws(() => openStateDir(dir, 'leveldb', 'job-a', 2, 128), { code: 'EDDY_STATE_DIR_UNWRITABLE', message: /cannot write .*: .*; free space there .*or use another stateDir/ });
  t.end();
});
