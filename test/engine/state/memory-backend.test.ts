import t from 'tap';
import { MemoryBackend } from '../../../engine/state/memory-backend.js';
import { stateBackendSuite } from './state-backend.suite.js';

stateBackendSuite(t, 'memory', () => new MemoryBackend(), { persistent: false });
