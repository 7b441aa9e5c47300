import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { type CliIo, run } from '../lambda/cli.js';
import type { Plan } from '../lambda/domain/plan.js';

const TEST_STATE_HOME = join(tmpdir(), `registry-janitor-test-state-${process.pid}`);

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the command line in-process with captured output; stdin is a pipe unless `tty` says otherwise, stdout
 * one unless `terminal` does.
 */
export async function runCli(
  args: readonly string[],
  opts: {
    env?: NodeJS.ProcessEnv;
    input?: string;
    tty?: boolean;
    terminal?: boolean;
    aws?: CliIo['aws'];
  } = {},
): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const stdin = Object.assign(new PassThrough(), { isTTY: opts.tty ?? false });
  stdin.end(opts.input ?? '');
  const code = await run(args, {
    stdout: { write: (text: string) => (stdout += text), isTTY: opts.terminal ?? false },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
    stdin,
    // An empty DOCKER_CONFIG folder keeps the user's own Docker logins out of tests, and a state folder of
    // their own the user's records of collections left running.
    env: { DOCKER_CONFIG: '/nonexistent-docker-config', XDG_STATE_HOME: TEST_STATE_HOME, ...opts.env },
    ...(opts.aws ? { aws: opts.aws } : {}),
  });
  return { code, stdout, stderr };
}

export function parsePlan(result: CliResult): Plan {
  if (result.code !== 0) throw new Error(`plan failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as Plan;
}
