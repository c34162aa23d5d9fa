/**
 * Running jobs of this user on this machine: each job with an admin endpoint writes one small file
 * (pid, name, admin URL) into a per-user runtime folder while it runs, so `eddy jobs` can list them
 * and `eddy status --job <name>` can find one without knowing its port.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EddyError } from '../errors.js';

export interface RegisteredJob {
  job: string;
  pid: number;
  /** The admin endpoint's base URL. */
  url: string;
  /** Wall-clock ms. */
  startedAt: number;
  /** The admin token, when the endpoint requires one (the file is readable by its user only). */
  token?: string;
}

/**
 * The folder: $EDDY_RUNTIME_DIR, else $XDG_RUNTIME_DIR/eddy (per user, cleared at logout), else
 * <tmpdir>/eddy-<uid>.
 */
export function runtimeDir(): string {
  const env = process.env;
  if (env.EDDY_RUNTIME_DIR) return env.EDDY_RUNTIME_DIR;
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'eddy');
  return join(tmpdir(), `eddy-${process.getuid?.() ?? 'user'}`);
}

/** Registers a running job; returns the function that removes the entry. */
export function registerJob(entry: RegisteredJob): () => void {
  const dir = runtimeDir();
  // Several jobs in one process (tests, an app submitting two jobs) each get their own file.
  const file = join(dir, `${entry.pid}-${entry.url.replace(/\W+/g, '_')}.json`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
  } catch {
    // A read-only or missing runtime folder costs only `eddy jobs`: the job runs regardless.
    return () => {};
  }
  const remove = (): void => rmSync(file, { force: true });
  // A process that exits at once (eddy run on a failed job, process.exit in an app) removes it too.
  process.once('exit', remove);
  return () => {
    process.off('exit', remove);
    remove();
  };
}

/** The registered jobs whose process is alive; entries of processes that are gone are removed. */
export function listJobs(): RegisteredJob[] {
  const dir = runtimeDir();
  let names: string[];
  try {
    names = readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
  const jobs: RegisteredJob[] = [];
  for (const name of names) {
    const file = join(dir, name);
    let entry: RegisteredJob;
    try {
      entry = JSON.parse(readFileSync(file, 'utf8')) as RegisteredJob;
    } catch {
      continue; // being written, or removed meanwhile
    }
    if (alive(entry.pid)) jobs.push(entry);
    else rmSync(file, { force: true });
  }
  return jobs.sort((a, b) => a.startedAt - b.startedAt);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running job named `name` (or with pid `name`); an error lists the running ones when none or several match. */
export function findJob(name: string): RegisteredJob {
  const jobs = listJobs();
  const matches = jobs.filter((entry) => entry.job === name || String(entry.pid) === name);
  if (matches.length === 1) return matches[0]!;
  const running = jobs.map((entry) => `${entry.job} (pid ${entry.pid}, ${entry.url})`).join(', ') || 'none';
  if (matches.length === 0) {
    throw new EddyError('EDDY_JOB_NOT_FOUND', `--job ${name}: no running job of that name is registered in ${runtimeDir()}; running jobs: ${running} (eddy jobs lists them)`);
  }
  throw new EddyError('EDDY_JOB_NOT_FOUND', `--job ${name}: ${matches.length} running jobs have that name: ${running}; pass the pid instead (--job <pid>) or --admin <url>`);
}
