#!/usr/bin/env node
// Registers the TypeScript loader (job modules are usually TypeScript), then runs the CLI: the sources
// in a checkout, the built JavaScript in the installed package (which ships dist/, not the sources).
import { existsSync } from 'node:fs';
import { register } from 'tsx/esm/api';

register();
const source = new URL('../engine/cli.ts', import.meta.url);
const { main } = await import(existsSync(source) ? source.href : new URL('../dist/engine/cli.js', import.meta.url).href);
main(process.argv).catch((error) => {
  process.stderr.write(`eddy: ${error?.code ? `${error.code}: ` : ''}${error?.message ?? error}\n`);
  process.exitCode = 1;
});
