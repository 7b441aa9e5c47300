import { createHash } from 'node:crypto';
import { Agent, type Dispatcher, interceptors } from 'undici';
import {
  BodyTooLargeError,
  errorCode,
  RegistryError,
  RegistryHttpError,
  RegistryRequestError,
} from './errors.js';

export const MAX_REDIRECTIONS = 5;

export interface DispatcherOptions {
  /** Connections per origin; the pool size. */
  readonly connections: number;
  readonly requestTimeoutMs: number;
  readonly insecureTls?: boolean;
  /** PEM bundle trusted in addition to nothing else: when given it replaces the default CAs, as in Node. */
  readonly ca?: string;
}

/** A keep-alive pool per origin, with the TLS settings of the registry. */
export function createAgent(options: DispatcherOptions): Agent {
  return new Agent({
    connections: options.connections,
    headersTimeout: options.requestTimeoutMs,
    bodyTimeout: options.requestTimeoutMs,
    connect: {
      rejectUnauthorized: !options.insecureTls,
      ...(options.ca ? { ca: options.ca } : {}),
    },
  });
}

/**
 * Redirects, at most MAX_REDIRECTIONS. The interceptor drops Authorization, Cookie and Proxy-Authorization when a
 * hop changes origin, so a blob redirected to object storage is fetched without the registry's credentials.
 * Retries are the client's, around the whole call: a body that breaks after its headers is sent for again, not
 * resumed.
 */
export function composeDispatcher(base: Dispatcher): Dispatcher {
  return base.compose(interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }));
}

export type HttpResponse = Dispatcher.ResponseData;
export type ResponseBody = HttpResponse['body'];

export interface ReadBodyResult {
  readonly bytes: Uint8Array;
  /** `sha256:<hex>` of the bytes. */
  readonly digest: string;
}

/**
 * Reads a whole body, hashing as it goes, and stops (destroying the connection) as soon as it passes the
 * limit, so a hostile or broken registry cannot make the client buffer gigabytes.
 */
export async function readBody(body: ResponseBody, limit: number, what: string): Promise<ReadBodyResult> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new BodyTooLargeError(what, limit);
      hash.update(chunk);
      chunks.push(chunk);
    }
  } catch (error) {
    abandon(body);
    throw error;
  }
  return { bytes: new Uint8Array(Buffer.concat(chunks, size)), digest: `sha256:${hash.digest('hex')}` };
}

/** Reads at most `limit` bytes of a body that is only used for an error message, and discards the rest. */
export async function readSnippet(body: ResponseBody, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) {
        abandon(body);
        break;
      }
    }
  } catch {
    // The body only decorates an error that is about to be thrown; a broken body must not replace it.
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

export async function discard(body: ResponseBody): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 });
  } catch {
    abandon(body);
  }
}

/** Closes a body that will not be read (and its connection) without an unhandled 'error' event. */
export function abandon(body: ResponseBody): void {
  body.on('error', () => undefined);
  body.destroy();
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
const TLS_CODE = /CERT|SELF_SIGNED|^ERR_TLS|^ERR_SSL|UNABLE_TO_(GET|VERIFY)/;

/** Turns a failure to get an answer into RegistryRequestError; the client's own errors pass through. */
export function translateTransportError(
  error: unknown,
  method: string,
  url: string,
  signal: AbortSignal | undefined,
): unknown {
  if (error instanceof RegistryError) return error;
  if (signal?.aborted) return new RegistryRequestError('RJ_ABORTED', method, url, { cause: error });
  const code = errorCode(error) ?? '';
  if (TIMEOUT_CODES.has(code)) return new RegistryRequestError('RJ_TIMEOUT', method, url, { cause: error });
  if (TLS_CODE.test(code)) return new RegistryRequestError('RJ_TLS', method, url, { cause: error });
  return new RegistryRequestError('RJ_NETWORK', method, url, { cause: error });
}

export function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

interface RegistryErrorEntry {
  readonly code: string;
  readonly message?: string;
}

/** The `errors` of a registry JSON error body; undefined when the body is not one. */
export function registryErrors(text: string): RegistryErrorEntry[] | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.errors)) return undefined;
  return parsed.errors.flatMap((entry: unknown) =>
    isRecord(entry) && typeof entry.code === 'string'
      ? [{ code: entry.code, ...(typeof entry.message === 'string' ? { message: entry.message } : {}) }]
      : [],
  );
}

/** The error for an answer the call does not expect, with the registry's own error code when it sent one. */
export async function httpError(
  response: HttpResponse,
  method: string,
  path: string,
): Promise<RegistryHttpError> {
  return httpErrorFromText(response, method, path, await readSnippet(response.body));
}

export function httpErrorFromText(
  response: HttpResponse,
  method: string,
  path: string,
  text: string,
): RegistryHttpError {
  const first = registryErrors(text)?.[0];
  return new RegistryHttpError({
    method,
    path,
    status: response.statusCode,
    ...(first ? { registryCode: clip(first.code, 64) } : {}),
    ...(first?.message ? { registryMessage: clip(first.message, 200) } : {}),
  });
}

export function httpErrorWithoutBody(
  response: HttpResponse,
  method: string,
  path: string,
): RegistryHttpError {
  return new RegistryHttpError({ method, path, status: response.statusCode });
}

export function clip(text: string, length: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters from the registry are removed
  const single = text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
  return single.length > length ? `${single.slice(0, length)}…` : single;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
