import t from 'tap';
import { LevelDbBackend } from '../../../engine/state/leveldb-backend.js';
import { stateBackendSuite } from './state-backend.suite.js';

stateBackendSuite(t, 'leveldb', (dir) => new LevelDbBackend(dir), { persistent: true });
