import { readFileSync } from 'node:fs';
import { join } from 'node:path';

let version: string | undefined;

/** The engine's version, from its package.json (one folder up from the sources, two from dist/engine). */
export function engineVersion(): string {
  if (version !== undefined) return version;
  for (const candidate of [join(import.meta.dirname, '..', 'package.json'), join(import.meta.dirname, '..', '..', 'package.json')]) {
    try {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'eddy' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // not this one
    }
  }
  return (version = 'unknown');
}
