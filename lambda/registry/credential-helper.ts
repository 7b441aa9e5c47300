import { spawn } from 'node:child_process';

export const CREDENTIAL_HELPER_TIMEOUT_MS = 30_000;
const HELPER_NAME = /^[A-Za-z0-9._-]+$/;
const NOT_FOUND_MESSAGE = 'credentials not found in native keychain';
const IDENTITY_TOKEN_USERNAME = '<token>';
const OUTPUT_LIMIT_BYTES = 64 * 1024;
const SHOWN_OUTPUT_CHARS = 400;

/** What `docker-credential-<name> get` answered; an identity token itself is not kept. */
export type HelperAnswer =
  | { readonly kind: 'not-found' }
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | { readonly kind: 'identity-token' };

/** The helper could not be run or gave no usable answer; the message names the executable, never a secret. */
export class CredentialHelperError extends Error {
  override readonly name = 'CredentialHelperError';
}

export function isCredentialHelperName(name: string): boolean {
  return HELPER_NAME.test(name);
}

export function credentialHelperExecutable(name: string): string {
  if (!isCredentialHelperName(name)) {
    throw new CredentialHelperError(
      `${JSON.stringify(name.slice(0, 80))} is not a credential helper name (only letters, digits, ".", "_" and "-")`,
    );
  }
  return `docker-credential-${name}`;
}

interface Captured {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `docker-credential-<name> get` without a shell, found on the PATH of `env`, with `serverAddress` on
 * its standard input, as the Docker CLI does.
 */
export async function getFromCredentialHelper(
  name: string,
  serverAddress: string,
  options: { env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<HelperAnswer> {
  const executable = credentialHelperExecutable(name);
  const timeoutMs = options.timeoutMs ?? CREDENTIAL_HELPER_TIMEOUT_MS;
  const result = await capture(executable, serverAddress, options.env, timeoutMs);
  if (result.code !== 0) {
    if (result.stdout.trim() === NOT_FOUND_MESSAGE) return { kind: 'not-found' };
    const how = result.code === null ? `was killed by ${result.signal}` : `exited with ${result.code}`;
    throw new CredentialHelperError(`${executable} get ${how}${shown(result)}`);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(result.stdout);
  } catch {
    throw new CredentialHelperError(
      `${executable} get printed something other than JSON {"ServerURL","Username","Secret"}${shown({ ...result, stdout: '' })}`,
    );
  }
  const record = typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>) : {};
  const { Username: username, Secret: secret } = record;
  if (typeof username !== 'string' || typeof secret !== 'string' || !username) {
    throw new CredentialHelperError(
      `${executable} get printed JSON without a Username and Secret (expected {"ServerURL","Username","Secret"})`,
    );
  }
  if (username === IDENTITY_TOKEN_USERNAME) return { kind: 'identity-token' };
  if (username.includes(':')) {
    throw new CredentialHelperError(
      `${executable} get printed a Username with ":", which HTTP Basic cannot send`,
    );
  }
  return { kind: 'password', username, password: secret };
}

function capture(
  executable: string,
  input: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, ['get'], { env, stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    const stdout = bounded();
    const stderr = bounded();
    let settled = false;
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    // The helper's own children may keep its pipes open after it is killed: stop listening, do not wait.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      settle(() =>
        reject(
          new CredentialHelperError(
            `${executable} get gave no answer within ${duration(timeoutMs)} and was stopped${shown({ stdout: '', stderr: stderr.text() })}`,
          ),
        ),
      );
    }, timeoutMs);
    child.stdout.on('data', stdout.add);
    child.stderr.on('data', stderr.add);
    child.stdin.on('error', () => undefined);
    child.on('error', (error: NodeJS.ErrnoException) => {
      const problem =
        error.code === 'ENOENT'
          ? `${executable} is not on PATH`
          : `${executable} cannot be run (${error.code ?? error.message})`;
      settle(() => reject(new CredentialHelperError(problem)));
    });
    child.on('close', (code, signal) =>
      settle(() => resolve({ code, signal, stdout: stdout.text(), stderr: stderr.text() })),
    );
    child.stdin.end(input);
  });
}

function bounded() {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    add: (chunk: Buffer) => {
      if (size >= OUTPUT_LIMIT_BYTES) return;
      chunks.push(chunk.subarray(0, OUTPUT_LIMIT_BYTES - size));
      size += chunk.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}

/**
 * The helper's own words: its stderr, and its stdout when that is a plain message (helpers print their errors
 * there). Output that looks like JSON could hold a secret and is never shown.
 */
function shown(output: { stdout: string; stderr: string }): string {
  const parts = [output.stderr, output.stdout]
    .map((text) => text.replace(/[\p{Cc}\s]+/gu, ' ').trim())
    .filter((text) => text && !text.startsWith('{'));
  if (parts.length === 0) return '';
  const text = [...new Set(parts)].join(' / ');
  return `: ${text.length > SHOWN_OUTPUT_CHARS ? `${text.slice(0, SHOWN_OUTPUT_CHARS)}…` : text}`;
}

function duration(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 1000)} s` : `${ms} ms`;
}
