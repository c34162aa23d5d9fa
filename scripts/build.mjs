#!/usr/bin/env node
// `npm run build`: compiles the engine to dist/ (JavaScript and declarations) and copies the files it
// loads at run time next to the compiled code: the worker bootstrap and the wire schemas.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
for (const dir of ['engine', 'operators', 'connectors']) {
  for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.(mjs|proto|html)$/.test(entry.name)) continue;
    // parentPath from Node 20.12; path before it.
    const from = join(entry.parentPath ?? entry.path, entry.name);
    const to = join(dist, from.slice(root.length + 1));
    // engine/console/ has no TypeScript: tsc made no folder for it.
    mkdirSync(dirname(to), { recursive: true });
    copyFileSync(from, to);
  }
}
