// Worker threads start here. User job modules and the engine are TypeScript: register the tsx loader
// in this thread first (loader hooks are per thread), then load the worker task.
import { register } from 'tsx/esm/api';

register();
const { runWorker } = await import('./worker-task.ts');
export default runWorker;
