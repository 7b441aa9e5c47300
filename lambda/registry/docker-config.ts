import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from './errors.js';

export interface UserPassword {
  readonly username: string;
  readonly password: string;
}

export interface DockerConfigLookup {
  readonly path: string;
  /** Credentials written in the file for the host, when Docker itself would use them. */
  readonly credentials?: UserPassword;
  /**
   * Set when Docker keeps this host's credentials in a helper (`credHelpers[host]`, or `credsStore` for every
   * host), which this tool does not run: the caller should ask for --username/--password instead.
   */
  readonly credentialHelper?: string;
}

export class DockerConfigError extends RegistryError {
  override readonly name = 'DockerConfigError';
  constructor(
    readonly path: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super('RJ_DOCKER_CONFIG', `${path}: ${problem}`, options);
  }
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as the Docker CLI resolves it. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  const dir = env.DOCKER_CONFIG;
  return dir ? join(dir, 'config.json') : join(home, '.docker', 'config.json');
}

/** The username and password Docker would use for `host` (`name[:port]`), if they are in the file itself. */
export async function readDockerConfigCredentials(
  host: string,
  path = defaultDockerConfigPath(),
): Promise<UserPassword | undefined> {
  return (await lookupDockerConfig(host, path)).credentials;
}

/**
 * Looks `host` up like the Docker CLI: a `credHelpers` entry wins, then `credsStore`, then `auths`. Keys in
 * `auths` may be written as `host`, `https://host`, `http://host` or `https://host/v1/`. A missing file is
 * not an error; a malformed one is.
 */
export async function lookupDockerConfig(
  host: string,
  path = defaultDockerConfigPath(),
): Promise<DockerConfigLookup> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { path };
    throw new DockerConfigError(path, 'cannot be read', { cause: error });
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new DockerConfigError(path, 'is not valid JSON', { cause: error });
  }
  if (!isRecord(config)) throw new DockerConfigError(path, 'is not a JSON object');

  const wanted = normaliseHost(host);
  const helpers = isRecord(config.credHelpers) ? config.credHelpers : {};
  for (const [key, helper] of Object.entries(helpers)) {
    if (normaliseHost(key) === wanted && typeof helper === 'string' && helper) {
      return { path, credentialHelper: helper };
    }
  }
  if (typeof config.credsStore === 'string' && config.credsStore) {
    return { path, credentialHelper: config.credsStore };
  }

  const auths = isRecord(config.auths) ? config.auths : {};
  for (const [key, entry] of Object.entries(auths)) {
    if (normaliseHost(key) !== wanted || !isRecord(entry)) continue;
    const credentials = entryCredentials(path, key, entry);
    if (credentials) return { path, credentials };
  }
  return { path };
}

function entryCredentials(
  path: string,
  key: string,
  entry: Record<string, unknown>,
): UserPassword | undefined {
  if (typeof entry.auth === 'string' && entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new DockerConfigError(
        path,
        `auths[${JSON.stringify(key)}].auth is not base64 of "username:password"`,
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof entry.username === 'string' && entry.username && typeof entry.password === 'string') {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

function normaliseHost(value: string): string {
  return value
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
