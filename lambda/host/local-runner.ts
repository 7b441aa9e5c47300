import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { watch } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { SSM_COMMAND_ID } from '../identifiers.js';
import type { HostAction, HostParams, HostResume, HostRun, HostRunner } from '../ports.js';
import { hostEnvironment, maintenanceScript } from './script.js';
import { parseHostOutput } from './summary.js';

const STDOUT_TAIL = 64 * 1024;
const STDERR_TAIL = 16 * 1024;
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;
const DEFAULT_KILL_GRACE_MS = 60_000;

export interface LocalRunnerOptions {
  /**
   * The environment the script starts from (PATH, HOME, TMPDIR…); RJ_* variables in it are dropped.
   * @default process.env
   */
  readonly env?: NodeJS.ProcessEnv;
  /** The script's text. @default the host script */
  readonly script?: string;
  /**
   * After this many milliseconds the script's process group is sent SIGTERM; a collection then stops its
   * collector, brings the registry back and reports `interrupted`.
   */
  readonly timeoutMs?: number;
  /** Aborting sends the script SIGTERM, as the timeout does. */
  readonly signal?: AbortSignal;
  /** How long after SIGTERM the script may take before SIGKILL. @default 60000 */
  readonly killGraceMs?: number;
  /** Inventory output beyond this is not kept (the run then has no `output`). @default 256 MiB */
  readonly maxOutputBytes?: number;
  /**
   * A folder where each collection writes its output and exit status, so that it outlives this runner: once
   * `timeoutMs` passes or `signal` aborts, the collection is left running, reported `running` with the command
   * id `resume` takes. Without it, the collection is stopped then.
   */
  readonly collectionsDir?: string;
}

export interface LocalHostRun extends HostRun {
  /** The end of what the script wrote to stderr. */
  readonly stderr: string;
  /** The script was sent SIGTERM: it ran longer than `timeoutMs`, or `signal` was aborted. */
  readonly stopped?: 'timeout' | 'aborted';
  /** Why the run has no summary or no output, when the runner knows. */
  readonly reason?: string;
}

/** Keeps the last `tail` characters of a stream, or everything while it stays within `keepAllBytes`. */
class TextSink {
  private text = '';
  private bytes = 0;
  /** Some of the stream was dropped. */
  truncated = false;
  private readonly decoder = new StringDecoder('utf8');

  constructor(
    private readonly tail: number,
    private readonly keepAllBytes = 0,
  ) {}

  write(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.append(this.decoder.write(chunk));
  }

  end(): string {
    this.append(this.decoder.end());
    return this.text;
  }

  private append(piece: string): void {
    this.text += piece;
    if (this.bytes > this.keepAllBytes && this.text.length > this.tail) {
      this.text = this.text.slice(-this.tail);
      this.truncated = true;
    }
  }
}

function withoutScriptVariables(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !key.startsWith('RJ_')) out[key] = value;
  }
  return out;
}

/**
 * Runs the script with its output in files and, once it ends, writes its exit status to a file renamed into
 * place: whoever comes back for the collection reads it there, this process gone or not.
 */
const DETACHED_WRAPPER = `bash -c "$1" registry-janitor-host
code=$?
printf '%s\\n' "$code" >"$2.tmp" && mv -f "$2.tmp" "$2"
exit "$code"`;

/** Finished collections whose files are kept in the collections folder. */
const KEPT_COLLECTIONS = 10;

interface CollectionFiles {
  readonly stdout: string;
  readonly stderr: string;
  readonly status: string;
  readonly pid: string;
}

const collectionFiles = (dir: string, commandId: string): CollectionFiles => ({
  stdout: join(dir, `${commandId}.out`),
  stderr: join(dir, `${commandId}.err`),
  status: join(dir, `${commandId}.status`),
  pid: join(dir, `${commandId}.pid`),
});

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Whether a process with this id exists (it may belong to another user). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What the script printed, as a run reports it: the summary parsed, the reason when there is none. */
function hostRun(
  action: HostAction,
  stdout: { readonly text: string; readonly truncated: boolean },
  exitCode: number,
  maxOutputBytes: number,
): Pick<HostRun, 'state' | 'exitCode' | 'summary' | 'output' | 'reason'> {
  const parsed = parseHostOutput(stdout.text);
  let reason: string | undefined;
  if (!parsed.summary) reason = parsed.problem ?? 'the host script printed no summary line';
  else if (stdout.truncated && action === 'inventory') {
    reason = `the inventory output was larger than ${maxOutputBytes} bytes and was not kept`;
  }
  return {
    state: 'finished',
    exitCode,
    ...(parsed.summary ? { summary: parsed.summary } : {}),
    ...(parsed.summary && !stdout.truncated ? { output: parsed.output } : {}),
    ...(reason !== undefined ? { reason } : {}),
  };
}

/** Runs the host script here with bash: for a registry container on this machine. */
export class LocalRunner implements HostRunner, HostResume {
  /** How a status-change event would name the commands; local collections have none. */
  readonly documentName = 'registry-janitor-host';
  private readonly env: NodeJS.ProcessEnv;
  private readonly script: string;
  private readonly timeoutMs: number | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly killGraceMs: number;
  private readonly maxOutputBytes: number;
  private readonly collectionsDir: string | undefined;

  constructor(options: LocalRunnerOptions = {}) {
    this.env = options.env ?? process.env;
    this.script = options.script ?? maintenanceScript();
    this.timeoutMs = options.timeoutMs;
    this.signal = options.signal;
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    this.collectionsDir = options.collectionsDir;
  }

  async run(action: HostAction, params: HostParams): Promise<LocalHostRun> {
    const env = { ...withoutScriptVariables(this.env), ...hostEnvironment(action, params) };
    if (action === 'collect' && this.collectionsDir !== undefined) {
      return this.runDetached(this.collectionsDir, env);
    }
    // Its own process group, so that a timeout reaches whatever the script is waiting for, not only the shell.
    const child = spawn('bash', ['-c', this.script, 'registry-janitor-host'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    // The inventory lines are the point of an inventory; a collection prints only its summary.
    const stdout = new TextSink(STDOUT_TAIL, action === 'inventory' ? this.maxOutputBytes : 0);
    const stderr = new TextSink(STDERR_TAIL);
    child.stdout.on('data', (chunk: Buffer) => stdout.write(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.write(chunk));

    const signalGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    let stopped: LocalHostRun['stopped'];
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (why: 'timeout' | 'aborted'): void => {
      if (stopped) return;
      stopped = why;
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), this.killGraceMs);
    };
    const timeoutTimer =
      this.timeoutMs === undefined ? undefined : setTimeout(() => stop('timeout'), this.timeoutMs);
    const onAbort = (): void => stop('aborted');
    if (this.signal?.aborted) onAbort();
    else this.signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): void => {
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      this.signal?.removeEventListener('abort', onAbort);
    };

    return new Promise((resolve, reject) => {
      child.once('error', (err) => {
        settle();
        reject(
          new Error(`could not run the host script with bash: ${err.message}`, {
            cause: err,
          }),
        );
      });
      child.once('close', (code, signal) => {
        settle();
        const text = stdout.end();
        resolve({
          ...hostRun(
            action,
            { text, truncated: stdout.truncated },
            exitCodeOf(code, signal),
            this.maxOutputBytes,
          ),
          stderr: stderr.end(),
          ...(stopped ? { stopped, interrupted: true as const } : {}),
        });
      });
    });
  }

  /**
   * Picks up a collection an earlier runner left running in the collections folder: waits at most `waitMs`
   * (default: until `signal` aborts) for the exit status it writes when it ends.
   */
  async resume(commandId: string, waitMs?: number): Promise<LocalHostRun> {
    const dir = this.collectionsDir;
    if (dir === undefined) throw new Error('resume: this runner was given no collections folder');
    if (!SSM_COMMAND_ID.test(commandId)) {
      throw new Error(
        `resume: expected a collection's command id such as 0b5f2c1e-1111-4222-8333-444455556666, got ${JSON.stringify(commandId)}`,
      );
    }
    const files = collectionFiles(dir, commandId);
    const status = await this.endOf(files, waitMs);
    if (status === 'running') return { state: 'running', commandId, stderr: '' };
    if (status === 'unknown') {
      const pid = await readOrUndefined(files.pid);
      return {
        state: 'finished',
        commandId,
        stderr: (await readOrUndefined(files.stderr)) ?? '',
        reason:
          pid === undefined
            ? `no collection with command id ${commandId} is known in ${dir}`
            : `the collection's process ended without writing its exit status (killed?); see the host log`,
      };
    }
    return this.finished(files, commandId, status);
  }

  private async runDetached(dir: string, env: Record<string, string>): Promise<LocalHostRun> {
    if (this.signal?.aborted) {
      throw new Error('the run was out of time before the collection could start; nothing was collected');
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await this.pruneCollections(dir);
    const commandId = randomUUID();
    const files = collectionFiles(dir, commandId);
    const [out, err] = await Promise.all([open(files.stdout, 'w', 0o600), open(files.stderr, 'w', 0o600)]);
    let child: ChildProcess;
    let started: Promise<unknown>;
    let ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    try {
      // A session of its own: a Ctrl-C at the terminal or the end of this process leaves it running.
      child = spawn('bash', ['-c', DETACHED_WRAPPER, 'registry-janitor-host', this.script, files.status], {
        env,
        stdio: ['ignore', out.fd, err.fd],
        detached: true,
      });
      const spawned = child;
      started = new Promise((resolve, reject) => {
        spawned.once('spawn', resolve);
        spawned.once('error', (error) =>
          reject(new Error(`could not run the host script with bash: ${error.message}`, { cause: error })),
        );
      });
      ended = new Promise((resolve) => spawned.once('close', (code, signal) => resolve({ code, signal })));
    } finally {
      await Promise.all([out.close(), err.close()]);
    }
    await started;
    await writeFile(files.pid, `${child.pid}\n`, { mode: 0o600 });

    const timedOut = new AbortController();
    const timer =
      this.timeoutMs === undefined ? undefined : setTimeout(() => timedOut.abort(), this.timeoutMs);
    const stopWaiting = AbortSignal.any([timedOut.signal, ...(this.signal ? [this.signal] : [])]);
    const outcome = await Promise.race([
      ended,
      new Promise<'left running'>((resolve) => {
        if (stopWaiting.aborted) resolve('left running');
        else stopWaiting.addEventListener('abort', () => resolve('left running'), { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (outcome === 'left running') {
      child.unref();
      return { state: 'running', commandId, stderr: '' };
    }
    const status = (await readOrUndefined(files.status))?.trim();
    return this.finished(
      files,
      commandId,
      status !== undefined && /^\d+$/.test(status)
        ? Number(status)
        : exitCodeOf(outcome.code, outcome.signal),
    );
  }

  /** The exit status a collection wrote, `running` while it has not after `waitMs`, `unknown` without one. */
  private async endOf(
    files: CollectionFiles,
    waitMs: number | undefined,
  ): Promise<number | 'running' | 'unknown'> {
    const written = async (): Promise<number | undefined> => {
      const text = (await readOrUndefined(files.status))?.trim();
      return text !== undefined && /^\d+$/.test(text) ? Number(text) : undefined;
    };
    const now = await written();
    if (now !== undefined) return now;
    const pid = Number((await readOrUndefined(files.pid))?.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !processExists(pid)) return (await written()) ?? 'unknown';
    if (waitMs === 0 || this.signal?.aborted) return 'running';
    const folder = dirname(files.status);
    const name = basename(files.status);
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (value: number | 'running'): void => {
        if (done) return;
        done = true;
        watcher.close();
        clearTimeout(timer);
        this.signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const check = (): void => {
        written().then((code) => {
          if (code !== undefined) finish(code);
        }, reject);
      };
      const watcher = watch(folder, (_event, changed) => {
        if (changed === name) check();
      });
      watcher.once('error', reject);
      const timer = waitMs === undefined ? undefined : setTimeout(() => finish('running'), waitMs);
      const onAbort = (): void => finish('running');
      this.signal?.addEventListener('abort', onAbort, { once: true });
      // Written between the first look and the watch.
      check();
    });
  }

  private async finished(files: CollectionFiles, commandId: string, exitCode: number): Promise<LocalHostRun> {
    const [text, size, stderr] = await Promise.all([
      readTail(files.stdout, STDOUT_TAIL),
      stat(files.stdout).then(
        (s) => s.size,
        () => 0,
      ),
      readTail(files.stderr, STDERR_TAIL),
    ]);
    return {
      ...hostRun('collect', { text, truncated: size > STDOUT_TAIL }, exitCode, this.maxOutputBytes),
      commandId,
      stderr,
    };
  }

  /** Leaves the files of the newest finished collections, and of every one still running. */
  private async pruneCollections(dir: string): Promise<void> {
    const names = await readdir(dir);
    const ended = await Promise.all(
      names
        .filter((name) => name.endsWith('.status'))
        .map(async (name) => ({
          id: name.slice(0, -'.status'.length),
          at: await stat(join(dir, name)).then(
            (s) => s.mtimeMs,
            () => 0,
          ),
        })),
    );
    ended.sort((a, b) => b.at - a.at);
    const gone = ended.slice(KEPT_COLLECTIONS);
    await Promise.all(
      gone.flatMap(({ id }) =>
        Object.values(collectionFiles(dir, id)).map((path) => rm(path, { force: true })),
      ),
    );
  }
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  return code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1);
}

/** The last `tail` characters of a file; empty when it is gone. */
async function readTail(path: string, tail: number): Promise<string> {
  const text = (await readOrUndefined(path)) ?? '';
  return text.length > tail ? text.slice(-tail) : text;
}
