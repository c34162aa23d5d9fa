#!/usr/bin/env node
// Registers the TypeScript loader (job modules are usually TypeScript), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../engine/cli.ts');
main(process.argv).catch((error) => {
  process.stderr.write(`eddy: ${error?.code ? `${error.code}: ` : ''}${error?.message ?? error}\n`);
  process.exitCode = 1;
});
