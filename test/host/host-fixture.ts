import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { maintenanceScriptPath } from '../../lambda/host/script.js';
import { parseHostOutput } from '../../lambda/host/summary.js';
import type { HostParams, HostSummary } from '../../lambda/ports.js';
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
