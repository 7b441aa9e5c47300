import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Credentials } from '../registry/auth.js';

export const SECRET_SHAPES = '{"username":"…","password":"…"} or {"token":"…"}';

/** Fifteen minutes: a rotated secret is picked up by a warm container within this time. */
export const SECRET_TTL_MS = 15 * 60_000;

/** The registry credentials could not be read from Secrets Manager; the message says what to fix. */
export class SecretError extends Error {
  override readonly name = 'SecretError';
  readonly code = 'RJ_SECRET';
}

/** Where the registry's credentials come from. */
export interface CredentialSource {
  credentials(): Promise<Credentials>;
}

export interface SecretCredentialsOptions {
  readonly client: SecretsManagerClient;
  readonly secretId: string;
  /** @default SECRET_TTL_MS */
  readonly ttlMs?: number;
  readonly now?: () => number;
}

const nonEmpty = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

/** The credentials in a secret's JSON text; never puts the text or its values in an error. */
export function parseSecret(text: string, secretId: string): Credentials {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SecretError(`the secret ${secretId} is not JSON: expected ${SECRET_SHAPES}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SecretError(`the secret ${secretId} is not a JSON object: expected ${SECRET_SHAPES}`);
  }
  const fields = value as Record<string, unknown>;
  if ('username' in fields || 'password' in fields) {
    if (!nonEmpty(fields.username) || !nonEmpty(fields.password)) {
      throw new SecretError(
        `the secret ${secretId} needs both "username" and "password" as non-empty strings: expected ${SECRET_SHAPES}`,
      );
    }
    if (fields.username.includes(':')) {
      throw new SecretError(
        `the secret ${secretId} has a "username" containing ":", which basic auth cannot carry`,
      );
    }
    return { username: fields.username, password: fields.password };
  }
  if (nonEmpty(fields.token)) return { token: fields.token };
  const keys = Object.keys(fields)
    .slice(0, 10)
    .map((key) => JSON.stringify(key.slice(0, 40)));
  throw new SecretError(
    `the secret ${secretId} has ${keys.length > 0 ? `the fields ${keys.join(', ')}` : 'no fields'}: expected ${SECRET_SHAPES}`,
  );
}

function errorName(error: unknown): string {
  const name = (error as { name?: unknown })?.name;
  return typeof name === 'string' ? name : 'Error';
}

/** Registry credentials from a Secrets Manager secret, read on first use and cached for `ttlMs`. */
export class SecretCredentials implements CredentialSource {
  readonly #client: SecretsManagerClient;
  readonly #secretId: string;
  readonly #ttlMs: number;
  readonly #now: () => number;
  #cached: { readonly value: Promise<Credentials>; readonly expiresAt: number } | undefined;

  constructor(options: SecretCredentialsOptions) {
    this.#client = options.client;
    this.#secretId = options.secretId;
    this.#ttlMs = options.ttlMs ?? SECRET_TTL_MS;
    this.#now = options.now ?? Date.now;
  }

  credentials(): Promise<Credentials> {
    const now = this.#now();
    if (this.#cached && this.#cached.expiresAt > now) return this.#cached.value;
    const value = this.#fetch();
    const entry = { value, expiresAt: now + this.#ttlMs };
    this.#cached = entry;
    value.catch(() => {
      if (this.#cached === entry) this.#cached = undefined;
    });
    return value;
  }

  async #fetch(): Promise<Credentials> {
    let text: string | undefined;
    try {
      const answer = await this.#client.send(new GetSecretValueCommand({ SecretId: this.#secretId }));
      text = answer.SecretString;
    } catch (error) {
      const name = errorName(error);
      const hint =
        name === 'AccessDeniedException'
          ? ': the function role needs secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)'
          : name === 'ResourceNotFoundException'
            ? ': no such secret in this account and region'
            : '';
      throw new SecretError(
        `the secret ${this.#secretId} could not be read (${name}: ${(error as Error).message})${hint}`,
        { cause: error },
      );
    }
    if (text === undefined) {
      throw new SecretError(`the secret ${this.#secretId} has no text value: expected ${SECRET_SHAPES}`);
    }
    return parseSecret(text, this.#secretId);
  }
}
