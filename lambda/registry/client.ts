import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import {
  assertDigest,
  assertRepositoryName,
  assertTagName,
  type Digest,
  isDigest,
  isRepositoryName,
  isTagName,
} from '../domain/names.js';
import type { DeleteCheck } from '../domain/plan.js';
import { wholeNumber } from '../domain/quantity.js';
import type { DeleteOutcome, FetchedManifest, Registry } from '../ports.js';
import { redactText } from '../redact.js';
import { type Credentials, hasUserPassword, RegistryAuth } from './auth.js';
import {
  AuthError,
  BodyTooLargeError,
  DELETES_DISABLED_FIX,
  DeleteRefusedError,
  DigestMismatchError,
  errorCode,
  READ_ONLY_FIX,
  RegistryError,
  RegistryRequestError,
  RegistryResponseError,
} from './errors.js';
import {
  abandon,
  clip,
  composeDispatcher,
  createAgent,
  discard,
  type HttpResponse,
  httpError,
  httpErrorFromText,
  httpErrorWithoutBody,
  isRecord,
  isSuccess,
  type ReadBodyResult,
  readBody,
  readSnippet,
  registryErrors,
  translateTransportError,
} from './http.js';
import { backoffMs, isRetryable, RETRY_STATUSES, type RetryOptions, retryAfterMs } from './retry.js';

export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** A catalog page of 1000 names or an unpaginated tag list of a busy repository fits easily. */
export const MAX_LISTING_BYTES = 32 * 1024 * 1024;
/** 2.8.2 and later answer 400 to a larger `n`. */
export const MAX_PAGE_SIZE = 1000;

export type InvalidNameKind = 'repository' | 'tag';

export interface RegistryClientOptions {
  /** `http://` or `https://` origin of the registry, without a path. */
  readonly url: string;
  readonly credentials?: Credentials;
  /** Skip TLS certificate verification. */
  readonly insecureTls?: boolean;
  /** PEM certificates to trust instead of the default CAs (the contents of a CA file). */
  readonly ca?: string;
  /** Connections kept open to the registry; requests beyond it queue. */
  readonly concurrency: number;
  /** Headers and body inactivity timeout per request. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** Aborts every request, including retries waiting to run, when it fires. */
  readonly deadline?: AbortSignal;
  /**
   * Retries after the first attempt for 429, 502, 503, 504, connection failures and resets (before or during
   * the body) and timeouts. @default 4
   */
  readonly retries?: number;
  /** First retry delay when the registry sends no Retry-After; doubled each time. @default 500 */
  readonly retryMinDelayMs?: number;
  /** Longest wait before a retry, Retry-After included. @default 10000 */
  readonly retryMaxDelayMs?: number;
  readonly userAgent?: string;
  /** Catalog page size (`n`), at most 1000. @default 1000 */
  readonly pageSize?: number;
  /** Pages followed before the listing is declared broken. @default 10000 */
  readonly maxPages?: number;
  /** Names in listings that fail the registry grammar are skipped and reported here. */
  readonly onInvalidName?: (kind: InvalidNameKind, value: string) => void;
  /** Used instead of an Agent (tests inject a MockAgent); retries and redirects are still composed on it. */
  readonly dispatcher?: Dispatcher;
  /** Milliseconds since the epoch, for token expiry. @default Date.now */
  readonly now?: () => number;
  /** Told of every HTTP exchange once its answer's headers arrive, or it fails; never of a header. */
  readonly onRequest?: (exchange: HttpExchange) => void;
  /** Told of every bearer token a token server grants, so that output can mask it. */
  readonly onToken?: (token: string) => void;
}

export interface HttpExchange {
  readonly method: string;
  /** Origin and path with query: registry names and digests, never a credential. */
  readonly url: string;
  /** The answer's status, or the error code of a request that got none. */
  readonly outcome: number | string;
  readonly durationMs: number;
}

type Method = 'GET' | 'HEAD' | 'DELETE';

interface Call {
  readonly method: Method;
  /** Path and query, already validated. */
  readonly path: string;
  readonly scope: string;
  readonly accept?: string;
}

const CATALOG_SCOPE = 'registry:catalog:*';
const pullScope = (repository: string) => `repository:${repository}:pull`;
const deleteScope = (repository: string) => `repository:${repository}:delete`;
const MANIFEST_ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');
/**
 * The digest checkDeletes asks the registry to delete. Nobody knows content that hashes to it, and the
 * registry checks every pushed manifest against its digest, so no repository can hold a manifest by it: the
 * DELETE can only be refused or answered "unknown". Its zeros also tell a reader of the access log what it was.
 */
export const PROBE_DIGEST = `sha256:${'0'.repeat(64)}` as Digest;
const GENERIC_CONTENT_TYPES = new Set(['', 'application/json', 'text/plain', 'application/octet-stream']);

/** Requests in flight the client allows at once: each is a connection of its pool. */
export const CONCURRENCY = wholeNumber({ min: 1, max: 64 });

/** The registry's HTTP API v2 over undici, implementing the Registry port. */
export class RegistryClient implements Registry {
  readonly origin: string;
  readonly concurrency: number;
  readonly #dispatcher: Dispatcher;
  readonly #owned: Dispatcher | undefined = undefined;
  readonly #deadline: AbortSignal | undefined;
  readonly #timeoutMs: number;
  readonly #retry: RetryOptions;
  readonly #userAgent: string;
  readonly #pageSize: number;
  readonly #maxPages: number;
  readonly #onInvalidName: RegistryClientOptions['onInvalidName'];
  readonly #now: () => number;
  readonly #onRequest: RegistryClientOptions['onRequest'];
  readonly #auth: RegistryAuth;

  constructor(options: RegistryClientOptions) {
    const url = parseRegistryUrl(options.url);
    this.origin = url.origin;
    const concurrency = positiveInteger(options.concurrency, 'concurrency');
    this.concurrency = concurrency;
    this.#timeoutMs = positiveInteger(options.requestTimeoutMs ?? 30_000, 'requestTimeoutMs');
    this.#retry = {
      retries: nonNegativeInteger(options.retries ?? 4, 'retries'),
      minDelayMs: nonNegativeInteger(options.retryMinDelayMs ?? 500, 'retryMinDelayMs'),
      maxDelayMs: nonNegativeInteger(options.retryMaxDelayMs ?? 10_000, 'retryMaxDelayMs'),
    };
    this.#pageSize = positiveInteger(options.pageSize ?? MAX_PAGE_SIZE, 'pageSize');
    if (this.#pageSize > MAX_PAGE_SIZE) {
      invalidOption('pageSize', options.pageSize, `at most ${MAX_PAGE_SIZE}`);
    }
    this.#maxPages = positiveInteger(options.maxPages ?? 10_000, 'maxPages');
    this.#deadline = options.deadline;
    this.#userAgent = options.userAgent ?? 'registry-janitor';
    this.#onInvalidName = options.onInvalidName;
    this.#now = options.now ?? Date.now;
    this.#onRequest = options.onRequest;
    this.#auth = new RegistryAuth({
      origin: this.origin,
      credentials: checkCredentials(options.credentials),
      now: this.#now,
      onToken: options.onToken,
      transport: {
        request: (origin, path, authorization) =>
          this.#request(origin, 'GET', path, 'application/json', authorization),
        read: (response, limit, what, url) => this.#read(response, limit, what, 'GET', url),
      },
    });

    let base = options.dispatcher;
    if (!base) {
      this.#owned = createAgent({
        connections: concurrency,
        requestTimeoutMs: this.#timeoutMs,
        insecureTls: options.insecureTls === true,
        ...(options.ca ? { ca: options.ca } : {}),
      });
      base = this.#owned;
    }
    this.#dispatcher = composeDispatcher(base);
  }

  /** Closes the connection pool the client created; an injected dispatcher is left to its owner. */
  async close(): Promise<void> {
    await this.#owned?.close();
  }

  async listRepositories(): Promise<string[]> {
    const names: string[] = [];
    await this.#paginate(
      `/v2/_catalog?n=${this.#pageSize}`,
      '/v2/_catalog',
      CATALOG_SCOPE,
      'repositories',
      (value) => {
        if (isRepositoryName(value)) names.push(value);
        else this.#reportInvalid('repository', value);
      },
    );
    return names;
  }

  async listTags(repository: string): Promise<string[]> {
    const name = assertRepositoryName(repository);
    const path = `/v2/${name}/tags/list`;
    const tags: string[] = [];
    await this.#paginate(path, path, pullScope(name), 'tags', (value) => {
      if (isTagName(value)) tags.push(value);
      else this.#reportInvalid('tag', value);
    });
    return tags;
  }

  async getManifest(repository: string, reference: string): Promise<FetchedManifest | undefined> {
    const name = assertRepositoryName(repository);
    const ref = assertReference(reference);
    const path = `/v2/${name}/manifests/${ref}`;
    const call: Call = { method: 'GET', path, scope: pullScope(name), accept: MANIFEST_ACCEPT };
    return this.#call(call, async (response) => {
      if (response.statusCode === 404) {
        await discard(response.body);
        return undefined;
      }
      if (!isSuccess(response.statusCode)) throw await httpError(response, 'GET', path);

      const what = `manifest ${name}@${ref}`;
      checkContentLength(response, MAX_MANIFEST_BYTES, what);
      const content = await this.#read(response, MAX_MANIFEST_BYTES, what, 'GET', `${this.origin}${path}`);
      const digest = content.digest as Digest;
      const sent = headerDigest(response, what);
      if (sent !== undefined && sent !== digest) throw new DigestMismatchError(what, sent, digest);
      if (isDigest(ref) && ref !== digest) throw new DigestMismatchError(what, ref, digest);
      return { digest, mediaType: manifestMediaType(response, content.bytes, what), body: content.bytes };
    });
  }

  async resolveManifest(repository: string, reference: string): Promise<Digest | undefined> {
    const name = assertRepositoryName(repository);
    const ref = assertReference(reference);
    const path = `/v2/${name}/manifests/${ref}`;
    const what = `manifest ${name}@${ref}`;
    const call: Call = { method: 'HEAD', path, scope: pullScope(name), accept: MANIFEST_ACCEPT };
    const answer = await this.#call(call, async (response) => {
      await discard(response.body);
      if (response.statusCode === 404) return { found: false } as const;
      if (!isSuccess(response.statusCode)) throw httpErrorWithoutBody(response, 'HEAD', path);
      return { found: true, digest: headerDigest(response, what) } as const;
    });
    if (!answer.found) return undefined;
    if (answer.digest === undefined) return (await this.getManifest(name, ref))?.digest;
    if (isDigest(ref) && ref !== answer.digest) throw new DigestMismatchError(what, ref, answer.digest);
    return answer.digest;
  }

  async getBlob(repository: string, digest: Digest, maxBytes: number): Promise<Uint8Array> {
    const name = assertRepositoryName(repository);
    const blob = assertDigest(digest);
    const limit = positiveInteger(maxBytes, 'maxBytes');
    const path = `/v2/${name}/blobs/${blob}`;
    return this.#call({ method: 'GET', path, scope: pullScope(name) }, async (response) => {
      if (!isSuccess(response.statusCode)) throw await httpError(response, 'GET', path);

      const what = `blob ${name}@${blob}`;
      checkContentLength(response, limit, what);
      const content = await this.#read(response, limit, what, 'GET', `${this.origin}${path}`);
      if (content.digest !== blob) throw new DigestMismatchError(what, blob, content.digest);
      return content.bytes;
    });
  }

  async statBlob(repository: string, digest: Digest): Promise<number | undefined> {
    const name = assertRepositoryName(repository);
    const blob = assertDigest(digest);
    const path = `/v2/${name}/blobs/${blob}`;
    return this.#call({ method: 'HEAD', path, scope: pullScope(name) }, async (response) => {
      await discard(response.body);
      if (response.statusCode === 404) return undefined;
      if (!isSuccess(response.statusCode)) throw httpErrorWithoutBody(response, 'HEAD', path);
      const length = Number(firstHeader(response, 'content-length'));
      if (!Number.isSafeInteger(length) || length < 0) {
        throw new RegistryResponseError(
          'RJ_BAD_RESPONSE',
          `HEAD ${path} answered without a valid Content-Length`,
        );
      }
      return length;
    });
  }

  async deleteManifest(repository: string, digest: Digest): Promise<DeleteOutcome> {
    const name = assertRepositoryName(repository);
    const target = assertDigest(digest);
    const path = `/v2/${name}/manifests/${target}`;
    return this.#call({ method: 'DELETE', path, scope: deleteScope(name) }, async (response) => {
      if (isSuccess(response.statusCode)) {
        await discard(response.body);
        return 'deleted';
      }
      if (response.statusCode === 404) {
        await discard(response.body);
        return 'already-gone';
      }
      if (response.statusCode !== 405) throw await httpError(response, 'DELETE', path);

      const text = await readSnippet(response.body);
      const refusal = deleteRefusal(text);
      if (refusal) throw new DeleteRefusedError(refusal, path);
      throw httpErrorFromText(response, 'DELETE', path, text);
    });
  }

  async checkDeletes(repository: string): Promise<DeleteCheck> {
    const name = assertRepositoryName(repository);
    const path = `/v2/${name}/manifests/${PROBE_DIGEST}`;
    const scope = deleteScope(name);
    const denied = (how: string): DeleteCheck => ({
      status: 'denied',
      repository: name,
      problem: `the registry does not let ${this.#auth.account()} delete in ${name} (${how})`,
      fix: this.#auth.hasCredentials
        ? `Give the account delete permission on the repository (scope ${scope}), or log in as one that has it.`
        : `Log in as an account with delete permission on the repository (scope ${scope}).`,
    });
    let response: HttpResponse;
    let text: string;
    try {
      ({ response, text } = await this.#call({ method: 'DELETE', path, scope }, async (answer) => ({
        response: answer,
        text: await readSnippet(answer.body),
      })));
    } catch (error) {
      if (error instanceof AuthError)
        return denied(error.method === 'DELETE' ? 'DELETE answered 401' : 'the token server refused it');
      throw error;
    }
    const status = response.statusCode;
    const codes = registryErrors(text)?.map((error) => error.code) ?? [];
    if ((status === 404 && codes.includes('MANIFEST_UNKNOWN')) || isSuccess(status)) {
      return { status: 'allowed', repository: name };
    }
    if (status === 403) return denied(`DELETE answered 403${codes[0] ? ` ${clip(codes[0], 64)}` : ''}`);
    const refusal = status === 405 ? deleteRefusal(text) : undefined;
    if (refusal === 'RJ_DELETE_DISABLED') {
      return {
        status: 'disabled',
        repository: name,
        problem: `deletes are disabled on the registry (DELETE in ${name} answered 405 UNSUPPORTED)`,
        fix: DELETES_DISABLED_FIX,
      };
    }
    if (refusal === 'RJ_READ_ONLY') {
      return {
        status: 'read-only',
        repository: name,
        problem: `the registry is in read-only maintenance mode (DELETE in ${name} answered 405)`,
        fix: READ_ONLY_FIX,
      };
    }
    return {
      status: 'unknown',
      repository: name,
      problem: httpErrorFromText(response, 'DELETE', path, text).message,
    };
  }

  async #paginate(
    firstPath: string,
    pathname: string,
    scope: string,
    field: 'repositories' | 'tags',
    onItem: (value: unknown) => void,
  ): Promise<void> {
    const seen = new Set<string>();
    let path = firstPath;
    for (let page = 1; ; page++) {
      const current = path;
      const answer = await this.#call({ method: 'GET', path: current, scope }, async (response) => {
        if (field === 'tags' && response.statusCode === 404) {
          const text = await readSnippet(response.body);
          // 2.8 answers NAME_UNKNOWN for a repository whose tags directory is gone: it has no tags.
          if (registryErrors(text)?.some((error) => error.code === 'NAME_UNKNOWN')) return undefined;
          throw httpErrorFromText(response, 'GET', current, text);
        }
        if (!isSuccess(response.statusCode)) throw await httpError(response, 'GET', current);

        const content = await this.#read(
          response,
          MAX_LISTING_BYTES,
          `GET ${current}`,
          'GET',
          `${this.origin}${current}`,
        );
        return { items: parseListing(content.bytes, field, current), link: nextLink(response.headers.link) };
      });
      if (answer === undefined) return;
      const { items, link } = answer;
      for (const item of items) onItem(item);

      if (link === undefined) return;
      const next = this.#checkNextLink(link, path, pathname);
      const cursor = new URL(next, this.origin).searchParams.get('last') ?? next;
      if (seen.has(cursor) || items.length === 0) {
        throw new RegistryResponseError(
          'RJ_PAGINATION',
          `GET ${path}: the next-page link does not advance (${next}); stopped to avoid looping`,
        );
      }
      if (page >= this.#maxPages) {
        throw new RegistryResponseError(
          'RJ_PAGINATION',
          `GET ${firstPath}: more than ${this.#maxPages} pages; stopped`,
        );
      }
      seen.add(cursor);
      path = next;
    }
  }

  #checkNextLink(link: string, current: string, pathname: string): string {
    let url: URL;
    try {
      url = new URL(link, new URL(current, this.origin));
    } catch (error) {
      throw new RegistryResponseError('RJ_PAGINATION', `GET ${current}: unusable next-page link`, {
        cause: error,
      });
    }
    if (url.origin !== this.origin || url.pathname !== pathname) {
      throw new RegistryResponseError(
        'RJ_PAGINATION',
        `GET ${current}: the next-page link points to ${url.origin}${url.pathname}, not ${this.origin}${pathname}; refusing to follow it`,
      );
    }
    return `${url.pathname}${url.search}`;
  }

  #reportInvalid(kind: InvalidNameKind, value: unknown): void {
    this.#onInvalidName?.(kind, typeof value === 'string' ? value : JSON.stringify(value));
  }

  async #read(
    response: HttpResponse,
    limit: number,
    what: string,
    method: Method,
    url: string,
  ): Promise<ReadBodyResult> {
    try {
      return await readBody(response.body, limit, what);
    } catch (error) {
      throw translateTransportError(error, method, url, this.#deadline);
    }
  }

  /**
   * Sends a call and hands its answer to `use`, which reads it. A status of RETRY_STATUSES, or a failure before
   * the answer is whole (isRetryable: a reset before or during the body, a timeout, a token server that is
   * unavailable), sends the whole call again, after Retry-After or the backoff, up to the retries. Every call
   * is idempotent: GET, HEAD, and DELETE of a manifest by digest, which answers 404 once it is done.
   */
  async #call<T>(call: Call, use: (response: HttpResponse) => Promise<T>): Promise<T> {
    for (let retry = 1; ; retry += 1) {
      let delayMs: number;
      try {
        const response = await this.#send(call);
        if (retry > this.#retry.retries || !RETRY_STATUSES.has(response.statusCode))
          return await use(response);
        delayMs =
          retryAfterMs(response.headers['retry-after'], this.#now(), this.#retry) ??
          backoffMs(retry, this.#retry);
        await discard(response.body);
      } catch (error) {
        if (retry > this.#retry.retries || !isRetryable(error)) throw error;
        delayMs = backoffMs(retry, this.#retry);
      }
      await this.#pause(delayMs, call);
    }
  }

  async #pause(ms: number, call: Call): Promise<void> {
    try {
      await sleep(ms, undefined, this.#deadline ? { signal: this.#deadline } : {});
    } catch (error) {
      throw new RegistryRequestError('RJ_ABORTED', call.method, `${this.origin}${call.path}`, {
        cause: error,
      });
    }
  }

  /** Sends a request with the credentials the registry wants, answering one 401 challenge. */
  async #send(call: Call): Promise<HttpResponse> {
    const sent = this.#auth.authorize(call);
    const first = await this.#request(this.origin, call.method, call.path, call.accept, sent);
    if (first.statusCode !== 401) return first;

    const authorization = await this.#auth.onChallenge(call, first, sent);
    const second = await this.#request(this.origin, call.method, call.path, call.accept, authorization);
    if (second.statusCode !== 401) return second;
    throw await this.#auth.onRejected(call, second);
  }

  async #request(
    origin: string,
    method: Method,
    path: string,
    accept: string | undefined,
    authorization: string | undefined,
  ): Promise<HttpResponse> {
    const headers: Record<string, string> = { 'user-agent': this.#userAgent };
    if (accept) headers.accept = accept;
    if (authorization) headers.authorization = authorization;
    const started = performance.now();
    const told = (outcome: number | string) =>
      this.#onRequest?.({
        method,
        url: `${origin}${path}`,
        outcome,
        durationMs: Math.round(performance.now() - started),
      });
    try {
      const response = await this.#dispatcher.request({
        origin,
        method,
        path,
        headers,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: this.#deadline ?? null,
      });
      told(response.statusCode);
      return response;
    } catch (error) {
      const translated = translateTransportError(error, method, `${origin}${path}`, this.#deadline);
      told(errorCode(translated) ?? 'error');
      throw translated;
    }
  }
}

export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  return new RegistryClient(options);
}

function assertReference(reference: string): string {
  return isDigest(reference) ? reference : assertTagName(reference);
}

function parseRegistryUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return invalidOption('url', redactText(String(value)), 'an http:// or https:// URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    invalidOption('url', value, 'http:// or https://');
  }
  if (url.username || url.password) invalidOption('url', redactText(value), 'without user:password@');
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    invalidOption('url', value, 'the registry origin only, without a path');
  }
  return url;
}

function checkCredentials(credentials: Credentials | undefined): Credentials | undefined {
  if (!credentials) return undefined;
  if (hasUserPassword(credentials)) {
    if (typeof credentials.username !== 'string' || typeof credentials.password !== 'string') {
      invalidOption('credentials', '(redacted)', 'a username and password');
    }
    if (!credentials.username || credentials.username.includes(':')) {
      invalidOption('credentials', '(redacted)', 'a non-empty username without ":"');
    }
    return credentials;
  }
  if (typeof credentials.token !== 'string' || !/^[\x21-\x7e]+$/.test(credentials.token)) {
    invalidOption('credentials', '(redacted)', 'a token of printable characters');
  }
  return credentials;
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) invalidOption(name, value, 'a positive integer');
  return value;
}

function nonNegativeInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) invalidOption(name, value, 'a non-negative integer');
  return value;
}

function invalidOption(name: string, value: unknown, expected: string): never {
  throw new RegistryError(
    'RJ_INVALID_OPTIONS',
    `registry client option ${name} must be ${expected}; got ${String(value)}`,
  );
}

function firstHeader(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function headerDigest(response: HttpResponse, what: string): Digest | undefined {
  const value = firstHeader(response, 'docker-content-digest');
  if (value === undefined) return undefined;
  if (!isDigest(value)) {
    throw new RegistryResponseError(
      'RJ_BAD_RESPONSE',
      `${what}: the registry sent an unusable Docker-Content-Digest ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
  return value;
}

function checkContentLength(response: HttpResponse, limit: number, what: string): void {
  const length = Number(firstHeader(response, 'content-length'));
  if (Number.isFinite(length) && length > limit) {
    abandon(response.body);
    throw new BodyTooLargeError(what, limit);
  }
}

function manifestMediaType(response: HttpResponse, body: Uint8Array, what: string): string {
  const header = (firstHeader(response, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (!GENERIC_CONTENT_TYPES.has(header)) return header;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body).toString('utf8'));
  } catch (error) {
    throw new RegistryResponseError('RJ_BAD_RESPONSE', `${what} is not JSON`, { cause: error });
  }
  if (isRecord(parsed)) {
    if (typeof parsed.mediaType === 'string' && parsed.mediaType) return parsed.mediaType;
    if (Array.isArray(parsed.manifests)) return 'application/vnd.oci.image.index.v1+json';
    if (isRecord(parsed.config) && Array.isArray(parsed.layers))
      return 'application/vnd.oci.image.manifest.v1+json';
  }
  throw new RegistryResponseError(
    'RJ_BAD_RESPONSE',
    `${what} has no media type (no Content-Type, no mediaType)`,
  );
}

function parseListing(bytes: Uint8Array, field: 'repositories' | 'tags', path: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (error) {
    throw new RegistryResponseError('RJ_BAD_RESPONSE', `GET ${path} did not answer JSON`, { cause: error });
  }
  if (!isRecord(parsed))
    throw new RegistryResponseError('RJ_BAD_RESPONSE', `GET ${path} did not answer an object`);
  const items = parsed[field];
  if (items === null || items === undefined) return [];
  if (!Array.isArray(items)) {
    throw new RegistryResponseError('RJ_BAD_RESPONSE', `GET ${path}: "${field}" is not a list`);
  }
  return items;
}

/** The `rel="next"` target of a Link header (RFC 8288), if any. */
export function nextLink(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(', ') : header;
  for (const match of text.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const params = match[2] ?? '';
    const rel = /;\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,]+))/i.exec(params);
    const relations = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (relations.includes('next')) return match[1];
  }
  return undefined;
}

/** Which refusal a 405 to a DELETE is: plain text in read-only mode, `UNSUPPORTED` with deletes disabled. */
function deleteRefusal(text: string): 'RJ_DELETE_DISABLED' | 'RJ_READ_ONLY' | undefined {
  const errors = registryErrors(text);
  if (errors === undefined) return 'RJ_READ_ONLY';
  return errors.some((error) => error.code === 'UNSUPPORTED') ? 'RJ_DELETE_DISABLED' : undefined;
}
