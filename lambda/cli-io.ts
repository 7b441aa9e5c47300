// What the command line writes through, shared by its entry and its commands.
import type { S3Client } from '@aws-sdk/client-s3';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { COMMANDS, type Command, UsageError } from './command-line.js';
import { errorMessage } from './error-message.js';
import type { Redactor } from './redact.js';
import { DEFAULT_WIDTH } from './report/text.js';

export interface CliIo {
  readonly stdout: { write(text: string): unknown; readonly isTTY?: boolean; readonly columns?: number };
  readonly stderr: { write(text: string): unknown; readonly isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  /** AWS clients for `--gc ssm`; built from the environment when absent. */
  readonly aws?: { readonly ssm?: SSMClient; readonly s3?: S3Client; sleep?(ms: number): Promise<void> };
}

export const EXIT = { done: 0, failed: 1, usage: 2 } as const;

export type Output = { write(text: string): unknown; readonly isTTY?: boolean; readonly columns?: number };

/** The io a run writes through: every text redacted, with its control characters escaped. */
export interface GuardedIo extends Omit<CliIo, 'stdout' | 'stderr'> {
  readonly stdout: Output;
  /** `clearLine` sends the one control sequence the command means to: back to the start of the line, erased. */
  readonly stderr: Output & { clearLine(): void };
  /** Masks a secret the run learns (a bearer token) in everything written from then on. */
  mask(secret: string): void;
  /** What every output goes through: for what the run writes to files. */
  readonly redactor: Redactor;
}

const CLEAR_LINE = '\r\x1b[K';

export function guard(io: CliIo, redactor: Redactor): GuardedIo {
  const through = (stream: CliIo['stdout']): Output => ({
    write: (text: string) => stream.write(redactor.text(text)),
    ...(stream.isTTY !== undefined ? { isTTY: stream.isTTY } : {}),
    ...(stream.columns !== undefined ? { columns: stream.columns } : {}),
  });
  return {
    ...io,
    stdout: through(io.stdout),
    stderr: { ...through(io.stderr), clearLine: () => io.stderr.write(CLEAR_LINE) },
    mask: (secret) => redactor.add(secret),
    redactor,
  };
}

/** How wide a line of human output may be: $COLUMNS, else the terminal's width, else 80. */
export function outputWidth(io: GuardedIo): number {
  const columns = Number(io.env.COLUMNS);
  if (Number.isInteger(columns) && columns >= 40) return columns;
  return io.stdout.isTTY && io.stdout.columns ? io.stdout.columns : DEFAULT_WIDTH;
}

export function usageFailure(io: GuardedIo, error: unknown, command: string | undefined): number {
  if (!(error instanceof UsageError)) {
    io.stderr.write(`error: ${errorMessage(error)}\n`);
    return EXIT.failed;
  }
  for (const problem of error.problems) io.stderr.write(`error: ${problem}\n`);
  io.stderr.write(
    COMMANDS.includes(command as Command)
      ? `Run registry-janitor help ${command} for its options and examples.\n`
      : 'Run registry-janitor help for the commands.\n',
  );
  return EXIT.usage;
}
