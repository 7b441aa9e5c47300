import { errorCode } from '../error-message.js';
export type RegistryErrorCode =
  | 'RJ_HTTP'
  | 'RJ_AUTH'
  | 'RJ_DELETE_DISABLED'
  | 'RJ_READ_ONLY'
  | 'RJ_BODY_TOO_LARGE'
  | 'RJ_DIGEST_MISMATCH'
  | 'RJ_BAD_RESPONSE'
  | 'RJ_PAGINATION'
  | 'RJ_NETWORK'
  | 'RJ_TIMEOUT'
  | 'RJ_TLS'
  | 'RJ_ABORTED'
  | 'RJ_DOCKER_CONFIG'
  | 'RJ_INVALID_OPTIONS';

/** Base of every error the registry client throws; `code` is stable, the message is for people. */
export class RegistryError extends Error {
  override readonly name: string = 'RegistryError';
  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface HttpErrorDetails {
  readonly method: string;
  /** Path and query of the request, without credentials. */
  readonly path: string;
  readonly status: number;
  /** The first `errors[].code` of the registry's JSON error body, when there was one. */
  readonly registryCode?: string;
  readonly registryMessage?: string;
}

/** The registry answered with a status the client does not expect for this call. */
export class RegistryHttpError extends RegistryError {
  override readonly name = 'RegistryHttpError';
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly registryCode: string | undefined;

  constructor(details: HttpErrorDetails, options?: { cause?: unknown }) {
    const registry = details.registryCode
      ? ` (${details.registryCode}${details.registryMessage ? `: ${details.registryMessage}` : ''})`
      : '';
    super('RJ_HTTP', `${details.method} ${details.path} answered ${details.status}${registry}`, options);
    this.method = details.method;
    this.path = details.path;
    this.status = details.status;
    this.registryCode = details.registryCode;
  }
}

export type AuthErrorCredentials = 'username-password' | 'token' | 'none';

/**
 * The registry (or its token server) rejected the credentials, or wanted some and none were given. The
 * message names the kind of credentials sent, never their value; where they came from is the caller's to say.
 */
export class AuthError extends RegistryError {
  override readonly name = 'AuthError';
  constructor(
    message: string,
    readonly method: string,
    readonly path: string,
    readonly credentials: AuthErrorCredentials,
    options?: { cause?: unknown },
  ) {
    super('RJ_AUTH', message, options);
  }
}

export const DELETES_DISABLED_FIX =
  'Set REGISTRY_STORAGE_DELETE_ENABLED=true (storage.delete.enabled: true in config.yml) and restart the registry.';
export const READ_ONLY_FIX =
  'Take it out of read-only mode (storage.maintenance.readonly.enabled: false, or remove REGISTRY_STORAGE_MAINTENANCE_READONLY) and restart the registry.';

/** The registry refuses manifest deletes: deletes are disabled, or it is in read-only maintenance mode. */
export class DeleteRefusedError extends RegistryError {
  override readonly name = 'DeleteRefusedError';
  constructor(
    code: 'RJ_DELETE_DISABLED' | 'RJ_READ_ONLY',
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(
      code,
      code === 'RJ_DELETE_DISABLED'
        ? `the registry refused DELETE ${path} (405 UNSUPPORTED): deletes are disabled. ${DELETES_DISABLED_FIX}`
        : `the registry refused DELETE ${path} (405): it is in read-only maintenance mode. ${READ_ONLY_FIX}`,
      options,
    );
  }
}

export class BodyTooLargeError extends RegistryError {
  override readonly name = 'BodyTooLargeError';
  constructor(
    readonly what: string,
    readonly limit: number,
    options?: { cause?: unknown },
  ) {
    super(
      'RJ_BODY_TOO_LARGE',
      `${what} is larger than the limit of ${limit} bytes; stopped reading it`,
      options,
    );
  }
}

export class DigestMismatchError extends RegistryError {
  override readonly name = 'DigestMismatchError';
  constructor(
    readonly what: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('RJ_DIGEST_MISMATCH', `${what}: expected digest ${expected}, but the content hashes to ${actual}`);
  }
}

/** The registry sent something the client cannot use: bad JSON, a bad header, a pagination loop. */
export class RegistryResponseError extends RegistryError {
  override readonly name = 'RegistryResponseError';
  constructor(code: 'RJ_BAD_RESPONSE' | 'RJ_PAGINATION', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The request did not get an answer: connection refused or reset after retries, a timeout, a certificate
 * that does not verify, the deadline.
 */
export class RegistryRequestError extends RegistryError {
  override readonly name = 'RegistryRequestError';
  constructor(
    code: 'RJ_NETWORK' | 'RJ_TIMEOUT' | 'RJ_TLS' | 'RJ_ABORTED',
    readonly method: string,
    readonly url: string,
    options?: { cause?: unknown },
  ) {
    super(code, `${method} ${url} ${describeFailure(code, options?.cause)}`, options);
  }
}

function describeFailure(code: RegistryRequestError['code'], cause: unknown): string {
  if (code === 'RJ_ABORTED') return 'was cancelled: the deadline passed';
  if (code === 'RJ_TIMEOUT') return 'timed out waiting for the registry';
  if (code === 'RJ_TLS') {
    const detail = [errorCode(cause), cause instanceof Error ? cause.message : undefined]
      .filter(Boolean)
      .join(': ');
    return `failed TLS verification (${detail}): trust the registry's CA certificate, or turn TLS verification off for it`;
  }
  const detail = errorCode(cause) ?? (cause instanceof Error ? cause.message : undefined);
  if (detail === 'ECONNREFUSED') return 'failed (ECONNREFUSED): is the registry running at that address?';
  if (detail === 'ENOTFOUND' || detail === 'EAI_AGAIN')
    return `failed (${detail}): the registry's host name does not resolve`;
  return `failed${detail ? ` (${detail})` : ''}`;
}

export { errorCode } from '../error-message.js';
