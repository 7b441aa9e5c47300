import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(PROJECT_ROOT, 'scripts', 'cli-from-source.js');

export interface CliRun {
  readonly code: number;
  /** Standard output, when it was not handed to `onStdout`. */
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliSinks {
  /** Receives standard output line by line instead of collecting it. */
  readonly onStdout?: (line: string) => void;
  /** Receives standard error line by line (it is collected either way). */
  readonly onStderr?: (line: string) => void;
  /** The environment of the command. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
  /** The entry point to run, such as a bundle. @default the sources, through tsx */
  readonly script?: string;
}

function lines(sink: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let partial = '';
  return {
    push(chunk) {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) sink(line);
    },
    end() {
      if (partial) sink(partial);
      partial = '';
    },
  };
}

/** Runs the command line (from source, unless `script` names another) in a child process, as a person or a cron job would. */
export function runCli(args: readonly string[], sinks: CliSinks = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [sinks.script ?? CLI, ...args], {
      cwd: PROJECT_ROOT,
      env: sinks.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    const outLines = sinks.onStdout ? lines(sinks.onStdout) : undefined;
    const errLines = sinks.onStderr ? lines(sinks.onStderr) : undefined;
    child.stdout.on('data', (chunk: Buffer) => (outLines ? outLines.push(chunk) : stdout.push(chunk)));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      errLines?.push(chunk);
    });
    child.once('error', reject);
    child.once('close', (code, signal) => {
      outLines?.end();
      errLines?.end();
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8'),
      });
    });
  });
}
