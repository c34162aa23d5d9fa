/**
 * The classic first stateful function: count how often each name was greeted.
 * Run it: `npx eddy run examples/greeter/job.ts --workers 2` (reads examples/greeter/names.ndjson).
 */
import { fileURLToPath } from 'node:url';
import { defineFunction, defineJob, defineRouter, fileIngress, memoryEgress, valueState } from '../../index.js';

export interface Greeting {
  name: string;
}

export const greeter = defineFunction<Greeting, { seen: ReturnType<typeof valueState<number>> }>({
  type: 'example/greeter',
  state: { seen: valueState<number>() },
  handler(ctx, message) {
    const seen = (ctx.state.seen.get() ?? 0) + 1;
    ctx.state.seen.set(seen);
    ctx.egress('greetings', { name: message.name, seen, text: seen === 1 ? `Hello, ${message.name}!` : `Hello again, ${message.name} (#${seen})` });
  },
});

export default defineJob({
  name: 'greeter',
  module: import.meta.url,
  functions: [greeter],
  ingresses: [fileIngress('names', { path: fileURLToPath(new URL('./names.ndjson', import.meta.url)) })],
  routers: [defineRouter<Greeting>('names', (record) => ({ to: greeter.address(record.name), message: record }))],
  egresses: [memoryEgress('greetings')],
});
