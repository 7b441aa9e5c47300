import { errorCode, RegistryHttpError, RegistryRequestError } from './errors.js';

export interface RetryOptions {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** The first delay when the registry sends no Retry-After; doubled for each retry after it. */
  readonly minDelayMs: number;
  /** The longest delay, Retry-After included. */
  readonly maxDelayMs: number;
}

/** Statuses that say "try again later": throttling and an unavailable gateway or backend. */
export const RETRY_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** Causes of a request without a whole answer that another attempt may not meet. */
const RETRY_CAUSES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
]);

/**
 * Whether a failed attempt is worth another: no whole answer arrived (the connection failed or was reset,
 * before or during the body, or the registry went quiet), or the answer was one of RETRY_STATUSES.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof RegistryHttpError) return RETRY_STATUSES.has(error.status);
  if (!(error instanceof RegistryRequestError)) return false;
  if (error.code === 'RJ_TIMEOUT') return true;
  return error.code === 'RJ_NETWORK' && RETRY_CAUSES.has(errorCode(error.cause) ?? '');
}

/** The delay before retry number `retry` (from 1): exponential from minDelayMs, at most maxDelayMs. */
export function backoffMs(retry: number, options: RetryOptions): number {
  return Math.min(options.minDelayMs * 2 ** (retry - 1), options.maxDelayMs);
}

/**
 * The delay a Retry-After header asks for (delay-seconds or an HTTP date), at most maxDelayMs; undefined when
 * there is none or it cannot be read.
 */
export function retryAfterMs(
  header: string | string[] | undefined,
  now: number,
  options: RetryOptions,
): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (!value) return undefined;
  let delay: number;
  if (/^\d+$/.test(value)) delay = Number(value) * 1000;
  else {
    // Every HTTP-date form starts with the day's name; Date.parse alone would take "-1" or "1.5" for dates.
    const at = /^[A-Za-z]{3}/.test(value) ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(at)) return undefined;
    delay = Math.max(0, at - now);
  }
  return Math.min(delay, options.maxDelayMs);
}
