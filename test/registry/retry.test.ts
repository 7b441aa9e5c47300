import { describe, expect, it } from 'vitest';
import {
  RegistryHttpError,
  RegistryRequestError,
  RegistryResponseError,
} from '../../lambda/registry/errors.js';
import { backoffMs, isRetryable, retryAfterMs } from '../../lambda/registry/retry.js';

const OPTIONS = { retries: 4, minDelayMs: 500, maxDelayMs: 10_000 };
const NOW = Date.parse('2026-03-01T12:00:00Z');

const network = (code: string) =>
  new RegistryRequestError('RJ_NETWORK', 'GET', 'http://registry/v2/', {
    cause: Object.assign(new Error(code), { code }),
  });

describe('retryAfterMs', () => {
  it.each([
    ['3', 3_000],
    ['0', 0],
    ['Sun, 01 Mar 2026 12:00:07 GMT', 7_000],
    ['Sun, 01 Mar 2026 11:59:00 GMT', 0],
    ['3600', 10_000],
  ])('reads %j as %i ms, at most the longest delay', (header, expected) => {
    expect(retryAfterMs(header, NOW, OPTIONS)).toBe(expected);
  });

  it.each([undefined, '', 'soon', '-1', '1.5'])('ignores %j', (header) => {
    expect(retryAfterMs(header, NOW, OPTIONS)).toBeUndefined();
  });
});

describe('backoffMs', () => {
  it('doubles from the first delay up to the longest', () => {
    expect([1, 2, 3, 4, 5, 6].map((retry) => backoffMs(retry, OPTIONS))).toEqual([
      500, 1_000, 2_000, 4_000, 8_000, 10_000,
    ]);
  });
});

describe('isRetryable', () => {
  it.each([
    ['a reset', network('ECONNRESET'), true],
    ['a body broken off', network('UND_ERR_SOCKET'), true],
    ['a refused connection', network('ECONNREFUSED'), true],
    ['a timeout', new RegistryRequestError('RJ_TIMEOUT', 'GET', 'http://registry/v2/'), true],
    [
      'a token server answering 503',
      new RegistryHttpError({ method: 'GET', path: '/token', status: 503 }),
      true,
    ],
    ['a 500', new RegistryHttpError({ method: 'GET', path: '/v2/', status: 500 }), false],
    ['a host name that does not resolve', network('ENOTFOUND'), false],
    [
      'a certificate that does not verify',
      new RegistryRequestError('RJ_TLS', 'GET', 'https://registry/v2/'),
      false,
    ],
    ['the deadline', new RegistryRequestError('RJ_ABORTED', 'GET', 'http://registry/v2/'), false],
    ['a body that is not JSON', new RegistryResponseError('RJ_BAD_RESPONSE', 'not JSON'), false],
  ])('%s: %s', (_what, error, expected) => {
    expect(isRetryable(error)).toBe(expected);
  });
});
