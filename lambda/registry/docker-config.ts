import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  CredentialHelperError,
  credentialHelperExecutable,
  getFromCredentialHelper,
  type HelperAnswer,
  isCredentialHelperName,
} from './credential-helper.js';
import { RegistryError } from './errors.js';

export interface UserPassword {
  readonly username: string;
  readonly password: string;
}

export interface CredentialHelperSetting {
  /** The suffix of `docker-credential-<name>`, already checked to be a plain file name. */
  readonly name: string;
  /** Where the file names it: `credHelpers["host"]` or `credsStore`. */
  readonly setting: string;
  /** The server addresses to ask it for, in order: the host, then other spellings of it from `auths`. */
  readonly serverAddresses: readonly string[];
}

export interface DockerConfigLookup {
  readonly path: string;
  /**
   * Credentials written in `auths` for the host, when Docker itself would use them: never with a
   * `credHelpers` entry, and with a `credsStore` only when the helper has none for the host.
   */
  readonly credentials?: UserPassword;
  /** The helper Docker asks for this host's credentials (`credHelpers[host]`, else `credsStore`). */
  readonly credentialHelper?: CredentialHelperSetting;
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
 * The username and password Docker would use for `host`: from its credential helper, run as the Docker CLI
 * runs it with `env` (its PATH finds the helper), else from the file. A helper without credentials for the
 * host means anonymous access, unless `credsStore` is set and `auths` holds a username and password.
 */
export async function resolveDockerCredentials(
  host: string,
  options: { path?: string; env: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<UserPassword | undefined> {
  const path = options.path ?? defaultDockerConfigPath(options.env);
  const lookup = await lookupDockerConfig(host, path);
  const helper = lookup.credentialHelper;
  if (!helper) return lookup.credentials;
  const executable = credentialHelperExecutable(helper.name);
  for (const serverAddress of helper.serverAddresses) {
    let answer: HelperAnswer;
    try {
      answer = await getFromCredentialHelper(helper.name, serverAddress, {
        env: options.env,
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
    } catch (error) {
      if (!(error instanceof CredentialHelperError)) throw error;
      throw new DockerConfigError(path, `${helper.setting} ${JSON.stringify(helper.name)}: ${error.message}`);
    }
    if (answer.kind === 'password') return { username: answer.username, password: answer.password };
    if (answer.kind === 'identity-token') {
      throw new DockerConfigError(
        path,
        `${helper.setting} ${JSON.stringify(helper.name)}: ${executable} holds an identity token for ${serverAddress} (Username "<token>"), and identity tokens are not supported`,
      );
    }
  }
  return lookup.credentials;
}

/**
 * Looks `host` up like the Docker CLI, without running a helper: a `credHelpers` entry wins, then `credsStore`
 * (falling back to `auths`), then `auths`. Keys in `auths` may be written as `host`, `https://host`,
 * `http://host` or `https://host/v1/`. A missing file is not an error; a malformed one is.
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
  for (const [key, name] of Object.entries(helpers)) {
    if (normaliseHost(key) === wanted && typeof name === 'string' && name) {
      const setting = `credHelpers[${JSON.stringify(key)}]`;
      return { path, credentialHelper: helperSetting(path, setting, name, [host]) };
    }
  }

  const auths = isRecord(config.auths) ? config.auths : {};
  const keys = Object.keys(auths).filter((key) => normaliseHost(key) === wanted);
  let credentials: UserPassword | undefined;
  for (const key of keys) {
    const entry = auths[key];
    credentials = isRecord(entry) ? entryCredentials(path, key, entry) : undefined;
    if (credentials) break;
  }
  if (typeof config.credsStore === 'string' && config.credsStore) {
    const addresses = [host, ...keys.filter((key) => key !== host)];
    return {
      path,
      credentialHelper: helperSetting(path, 'credsStore', config.credsStore, addresses),
      ...(credentials ? { credentials } : {}),
    };
  }
  return credentials ? { path, credentials } : { path };
}

function helperSetting(
  path: string,
  setting: string,
  name: string,
  serverAddresses: string[],
): CredentialHelperSetting {
  if (!isCredentialHelperName(name)) {
    throw new DockerConfigError(
      path,
      `${setting}: ${JSON.stringify(name.slice(0, 80))} is not a credential helper name; Docker runs docker-credential-<name>, so use only letters, digits, ".", "_" and "-", e.g. "pass"`,
    );
  }
  return { name, setting, serverAddresses };
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
