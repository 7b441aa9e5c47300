import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { HostAction, HostParams, HostRun, HostRunner } from '../ports.js';
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

/** Runs the host script here with bash: for a registry container on this machine. */
export class LocalRunner implements HostRunner {
  private readonly env: NodeJS.ProcessEnv;
  private readonly script: string;
  private readonly timeoutMs: number | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly killGraceMs: number;
  private readonly maxOutputBytes: number;

  constructor(options: LocalRunnerOptions = {}) {
    this.env = options.env ?? process.env;
    this.script = options.script ?? maintenanceScript();
    this.timeoutMs = options.timeoutMs;
    this.signal = options.signal;
    this.killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  }

  async run(action: HostAction, params: HostParams): Promise<LocalHostRun> {
    const env = { ...withoutScriptVariables(this.env), ...hostEnvironment(action, params) };
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
        const exitCode = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1);
        const parsed = parseHostOutput(stdout.end());
        let reason: string | undefined;
        if (!parsed.summary) reason = parsed.problem ?? 'the host script printed no summary line';
        else if (stdout.truncated && action === 'inventory') {
          reason = `the inventory output was larger than ${this.maxOutputBytes} bytes and was not kept`;
        }
        resolve({
          state: 'finished',
          exitCode,
          ...(parsed.summary ? { summary: parsed.summary } : {}),
          ...(parsed.summary && !stdout.truncated ? { output: parsed.output } : {}),
          stderr: stderr.end(),
          ...(stopped ? { stopped, interrupted: true as const } : {}),
          ...(reason !== undefined ? { reason } : {}),
        });
      });
    });
  }
}
