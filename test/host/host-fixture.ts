import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostEnvironment, maintenanceScriptPath } from '../../lambda/host/script.js';
import { runShellScriptCommands } from '../../lambda/host/ssm-runner.js';
import { parseHostOutput } from '../../lambda/host/summary.js';
import type { HostAction, HostParams, HostSummary } from '../../lambda/ports.js';
import {
  type DockerStandIn,
  type DockerStandInOptions,
  installDockerStandIn,
} from '../support/docker-stand-in.js';
import { type StartRegistryOptions, startRegistry, type TestRegistry } from '../support/registry.js';

export interface ScriptResult {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly summary: HostSummary | undefined;
}

/**
 * Runs the host script with `sh` (dash on Debian: POSIX, none of bash's extensions); LocalRunner runs it
 * with bash. Asynchronously: the stand-in's control server lives in this process.
 */
export function runScript(env: NodeJS.ProcessEnv): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', [maintenanceScriptPath()], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', reject);
    child.once('close', (exitCode) =>
      resolve({ exitCode, stdout, stderr, summary: parseHostOutput(stdout).summary }),
    );
  });
}

export interface HostFixture {
  readonly reg: TestRegistry;
  readonly docker: DockerStandIn;
  /** A scratch directory for the lock file and the logs. */
  readonly dir: string;
  readonly lockFile: string;
  readonly logDir: string;
  /** Parameters that keep the script in the scratch directory and make it poll every second. */
  readonly params: HostParams;
  /** The stand-in's environment with the RJ_* variables of `params`. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  run(extra: Record<string, string>): Promise<ScriptResult>;
  close(): Promise<void>;
}

export async function startHostFixture(
  opts: { registry?: StartRegistryOptions; docker?: DockerStandInOptions } = {},
): Promise<HostFixture> {
  const reg = await startRegistry(opts.registry);
  const docker = await installDockerStandIn(reg, opts.docker);
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-host-'));
  const lockFile = join(dir, 'janitor.lock');
  const logDir = join(dir, 'logs');
  const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
    ...docker.env,
    RJ_LOCK_FILE: lockFile,
    RJ_LOG_DIR: logDir,
    RJ_POLL_SECONDS: '1',
    RJ_READY_SECONDS: '20',
    ...extra,
  });
  return {
    reg,
    docker,
    dir,
    lockFile,
    logDir,
    params: { lockFile, logDir, pollSeconds: 1, readySeconds: 20 },
    env,
    run: (extra) => runScript(env(extra)),
    close: async () => {
      await docker.close();
      await reg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A host script started the way the SSM Agent starts one. */
export interface AgentRun {
  /** The script's process id, which is also its process group's. */
  readonly pid: number;
  /** SIGKILL to the script's whole process group, as the agent does on an execution timeout or a cancel. */
  kill(): void;
  readonly done: Promise<ScriptResult & { readonly signal: NodeJS.Signals | null }>;
}

let agentRuns = 0;

/**
 * Starts the host script as the SSM Agent runs AWS-RunShellScript: the commands (the validated assignments, then
 * the script) written to a `_script.sh`, run with `sh -c <file>` in a process group of its own.
 */
export async function startLikeAgent(
  host: HostFixture,
  action: HostAction,
  params: HostParams,
): Promise<AgentRun> {
  const file = join(host.dir, `_script-${++agentRuns}.sh`);
  await writeFile(file, `${runShellScriptCommands(hostEnvironment(action, params)).join('\n')}\n`, {
    mode: 0o700,
  });
  const child = spawn('sh', ['-c', file], {
    env: host.docker.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const done = new Promise<ScriptResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode, signal) =>
      resolve({ exitCode, signal, stdout, stderr, summary: parseHostOutput(stdout).summary }),
    );
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('sh did not start');
  return { pid, kill: () => process.kill(-pid, 'SIGKILL'), done };
}

/** What a collection records while it has not finished, as the script writes it into the log folder. */
export interface CollectionMarker {
  /** The detached collector: its process id, which is also its process group's. */
  readonly pid: number;
  readonly mode: string;
  readonly log: string;
  readonly gcContainer: string;
}

/** The marker in the script's log folder (RJ_LOG_DIR), if a collection left one. */
export async function readMarker(logDir: string): Promise<CollectionMarker | undefined> {
  let text: string;
  try {
    text = await readFile(join(logDir, 'collection-in-progress'), 'utf8');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined;
    throw error;
  }
  const fields = new Map(
    text
      .split('\n')
      .filter((line) => line.includes('='))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
  return {
    pid: Number(fields.get('pid')),
    mode: fields.get('mode') ?? '',
    log: fields.get('log') ?? '',
    gcContainer: fields.get('gc_container') ?? '',
  };
}

/** Resolves once nothing holds the host lock any more: no collection, and no collector of one, is running. */
export async function lockReleased(lockFile: string): Promise<void> {
  const waiter = spawn('flock', [lockFile, 'true'], { stdio: 'ignore' });
  const [code] = (await once(waiter, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`flock ${lockFile} exited ${code}`);
}
