import { printable } from '../domain/names.js';
import { AuthError, type AuthErrorCredentials, RegistryResponseError } from './errors.js';
import { discard, type HttpResponse, httpError, isRecord, isSuccess, type ReadBodyResult } from './http.js';

export type Credentials =
  | { readonly username: string; readonly password: string }
  | { readonly token: string };

export interface Challenge {
  /** Lower-case scheme: `basic`, `bearer`, … */
  readonly scheme: string;
  /** Parameter names are lower-case; values are unquoted and unescaped. */
  readonly params: ReadonlyMap<string, string>;
}

const SCHEME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;
const PARAM = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))[ \t]*,?[ \t]*/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*[ \t]*(?=,|$)/;
const SEPARATORS = /^[\s,]*/;

/**
 * Parses `WWW-Authenticate` (RFC 9110 §11.6.1): one or more challenges separated by commas, each a scheme and
 * then `name=value` or `name="quoted, \"value\""` parameters, or a token68. Unquoted values run to the next
 * comma or space, so an unquoted realm URL survives. Several header lines may be passed as an array.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((value) => parseChallenges(value));
  const challenges: Challenge[] = [];
  let rest = header;
  for (;;) {
    rest = rest.replace(SEPARATORS, '');
    const scheme = SCHEME.exec(rest)?.[0];
    if (!scheme) break;
    rest = rest.slice(scheme.length).replace(/^[ \t]+/, '');
    const params = new Map<string, string>();
    challenges.push({ scheme: scheme.toLowerCase(), params });
    const token68 = TOKEN68.exec(rest);
    if (token68 && !PARAM.test(rest)) {
      rest = rest.slice(token68[0].length);
      continue;
    }
    for (let param = PARAM.exec(rest); param; param = PARAM.exec(rest)) {
      const [all, name = '', quoted, bare] = param;
      params.set(name.toLowerCase(), quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (bare ?? ''));
      rest = rest.slice(all.length);
    }
  }
  return challenges;
}

interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** Bearer tokens per scope, and which scope the registry asked for when a call's own scope differed. */
class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #aliases = new Map<string, string>();

  constructor(private readonly now: () => number) {}

  /** The token to send for a call needing `scope`, if one is cached and not about to expire. */
  get(scope: string): string | undefined {
    const key = this.#aliases.get(scope) ?? scope;
    const entry = this.#tokens.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.now()) {
      this.#tokens.delete(key);
      return undefined;
    }
    return entry.token;
  }

  /** The token cached under exactly `scope`, ignoring aliases. */
  exact(scope: string): string | undefined {
    const entry = this.#tokens.get(scope);
    return entry && entry.expiresAt > this.now() ? entry.token : undefined;
  }

  set(callScope: string, grantedScope: string, token: string, expiresInSeconds: number): void {
    const lifetimeMs = expiresInSeconds * 1000;
    // Renew before the server would: 10 % of the lifetime, at least 5 s and at most 60 s.
    const margin = Math.min(60_000, Math.max(5_000, lifetimeMs * 0.1));
    this.#tokens.set(grantedScope, { token, expiresAt: this.now() + Math.max(0, lifetimeMs - margin) });
    this.alias(callScope, grantedScope);
  }

  /** Calls needing `callScope` send the token granted for `grantedScope` (the scope the registry asked for). */
  alias(callScope: string, grantedScope: string): void {
    if (callScope !== grantedScope) this.#aliases.set(callScope, grantedScope);
  }

  delete(scope: string): void {
    this.#tokens.delete(this.#aliases.get(scope) ?? scope);
  }
}

const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;

function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

export function hasUserPassword(
  credentials: Credentials | undefined,
): credentials is { readonly username: string; readonly password: string } {
  return credentials !== undefined && 'username' in credentials;
}

/** What the authorizer needs to know of a call: what it asks and which token scope it needs. */
export interface AuthRequest {
  readonly method: string;
  /** Path and query on the registry. */
  readonly path: string;
  readonly scope: string;
}

/**
 * The client's one request path, through which a token server is reached too, so that every exchange is
 * logged, timed and translated in one place.
 */
export interface TokenTransport {
  request(origin: string, path: string, authorization: string | undefined): Promise<HttpResponse>;
  /** `url`: the whole address read from, as an error names it. */
  read(response: HttpResponse, limit: number, what: string, url: string): Promise<ReadBodyResult>;
}

export interface RegistryAuthOptions {
  /** The registry's origin, as errors name it. */
  readonly origin: string;
  readonly credentials: Credentials | undefined;
  /** Milliseconds since the epoch, for token expiry. */
  readonly now: () => number;
  /** Told of every bearer token a token server grants, so that output can mask it. */
  readonly onToken?: ((token: string) => void) | undefined;
  readonly transport: TokenTransport;
}

const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

interface GrantedToken {
  readonly token: string;
  readonly expiresIn: number;
}

/**
 * Which credentials to send, and how: a given bearer token as is; a username and password as Basic once the
 * registry asked for Basic, or exchanged at the token server of a Bearer challenge for a token per scope,
 * cached until shortly before it expires. Concurrent calls needing the same token share one request for it.
 */
export class RegistryAuth {
  readonly #origin: string;
  readonly #protocol: string;
  readonly #credentials: Credentials | undefined;
  readonly #onToken: ((token: string) => void) | undefined;
  readonly #transport: TokenTransport;
  readonly #tokens: TokenCache;
  readonly #tokenRequests = new Map<string, Promise<GrantedToken>>();
  #scheme: 'unknown' | 'basic' | 'bearer' = 'unknown';

  constructor(options: RegistryAuthOptions) {
    this.#origin = options.origin;
    this.#protocol = new URL(options.origin).protocol;
    this.#credentials = options.credentials;
    this.#onToken = options.onToken;
    this.#transport = options.transport;
    this.#tokens = new TokenCache(options.now);
    if (this.#credentials && !hasUserPassword(this.#credentials)) this.#scheme = 'bearer';
  }

  get hasCredentials(): boolean {
    return this.#credentials !== undefined;
  }

  /** The Authorization to send before any challenge, if the client already knows what the registry wants. */
  authorize(request: AuthRequest): string | undefined {
    const credentials = this.#credentials;
    if (credentials && !hasUserPassword(credentials)) return `Bearer ${credentials.token}`;
    if (this.#scheme === 'basic' && hasUserPassword(credentials)) {
      return basicAuthorization(credentials.username, credentials.password);
    }
    if (this.#scheme === 'bearer') {
      const token = this.#tokens.get(request.scope);
      if (token) return `Bearer ${token}`;
    }
    return undefined;
  }

  /**
   * The Authorization that answers a 401 to a request sent with `sent`, fetching a token if the challenge
   * needs one; consumes the answer's body.
   */
  async onChallenge(request: AuthRequest, response: HttpResponse, sent: string | undefined): Promise<string> {
    const challenges = parseChallenges(response.headers['www-authenticate']);
    await discard(response.body);
    const credentials = this.#credentials;
    if (credentials && !hasUserPassword(credentials)) {
      throw this.#authError(request, 'rejected the bearer token (401)');
    }
    const bearer = challenges.find((challenge) => challenge.scheme === 'bearer');
    if (bearer) {
      this.#scheme = 'bearer';
      const granted = bearer.params.get('scope') || request.scope;
      this.#tokens.alias(request.scope, granted);
      const cached = this.#tokens.exact(granted);
      if (cached && `Bearer ${cached}` !== sent) return `Bearer ${cached}`;
      const { token, expiresIn } = await this.#fetchToken(request, bearer, granted);
      this.#tokens.set(request.scope, granted, token, expiresIn);
      return `Bearer ${token}`;
    }
    if (challenges.some((challenge) => challenge.scheme === 'basic')) {
      if (!hasUserPassword(credentials)) {
        throw this.#authError(request, 'requires a username and password (Basic) and none were given');
      }
      const authorization = basicAuthorization(credentials.username, credentials.password);
      if (sent === authorization) throw this.#authError(request, 'rejected the username and password (401)');
      this.#scheme = 'basic';
      return authorization;
    }
    const offered =
      challenges.map((challenge) => challenge.scheme).join(', ') || 'no WWW-Authenticate challenge';
    throw this.#authError(
      request,
      `answered 401 with an authentication scheme the client does not support (${offered})`,
    );
  }

  /** The error for a 401 to the answered challenge; forgets the token that was refused and consumes the body. */
  async onRejected(request: AuthRequest, response: HttpResponse): Promise<AuthError> {
    await discard(response.body);
    if (this.#scheme === 'bearer') this.#tokens.delete(request.scope);
    const insufficient = parseChallenges(response.headers['www-authenticate']).some(
      (challenge) => challenge.scheme === 'bearer' && challenge.params.get('error') === 'insufficient_scope',
    );
    return this.#authError(
      request,
      insufficient
        ? `did not grant ${this.account()} ${request.scope} (401 insufficient_scope)`
        : `rejected ${this.#credentialPhrase()} (401 after answering the challenge)`,
    );
  }

  /** Who the registry sees: the account's name, never a secret. */
  account(): string {
    const credentials = this.#credentials;
    if (!credentials) return 'anonymous access';
    return hasUserPassword(credentials)
      ? `the account ${printable(credentials.username)}`
      : 'the bearer token';
  }

  #fetchToken(request: AuthRequest, challenge: Challenge, scope: string): Promise<GrantedToken> {
    const realm = challenge.params.get('realm') ?? '';
    const service = challenge.params.get('service');
    const key = JSON.stringify([realm, service, scope]);
    const pending = this.#tokenRequests.get(key);
    if (pending) return pending;
    const fetched = this.#requestToken(request, realm, service, scope).finally(() =>
      this.#tokenRequests.delete(key),
    );
    this.#tokenRequests.set(key, fetched);
    return fetched;
  }

  async #requestToken(
    request: AuthRequest,
    realm: string,
    service: string | undefined,
    scope: string,
  ): Promise<GrantedToken> {
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw this.#authError(request, 'sent a Bearer challenge without a usable realm URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw this.#authError(
        request,
        `sent a Bearer challenge with a ${url.protocol} realm; only http(s) is supported`,
      );
    }
    const credentials = this.#credentials;
    const withCredentials = hasUserPassword(credentials);
    if (withCredentials && url.protocol === 'http:' && this.#protocol === 'https:') {
      throw this.#authError(
        request,
        `named the token server ${url.origin} over plain http; refusing to send credentials there from an https registry`,
      );
    }
    if (service !== undefined) url.searchParams.set('service', service);
    for (const part of scope.split(' ').filter(Boolean)) url.searchParams.append('scope', part);
    const where = `${url.origin}${url.pathname}`;
    const path = `${url.pathname}${url.search}`;

    const authorization = withCredentials
      ? basicAuthorization(credentials.username, credentials.password)
      : undefined;
    const response = await this.#transport.request(url.origin, path, authorization);
    if (response.statusCode === 401 || response.statusCode === 403) {
      await discard(response.body);
      throw new AuthError(
        `the token server ${where} refused ${this.#credentialPhrase()} for scope ${scope} (${response.statusCode})`,
        'GET',
        where,
        this.#credentialKind(),
      );
    }
    if (!isSuccess(response.statusCode)) throw await httpError(response, 'GET', where);
    const content = await this.#transport.read(
      response,
      MAX_TOKEN_RESPONSE_BYTES,
      `token from ${where}`,
      where,
    );
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(content.bytes).toString('utf8'));
    } catch (error) {
      throw new RegistryResponseError('RJ_BAD_RESPONSE', `the token server ${where} sent invalid JSON`, {
        cause: error,
      });
    }
    const record = isRecord(body) ? body : {};
    const token = typeof record.token === 'string' && record.token ? record.token : record.access_token;
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
      throw new RegistryResponseError('RJ_BAD_RESPONSE', `the token server ${where} sent no usable token`);
    }
    this.#onToken?.(token);
    const expiresIn =
      typeof record.expires_in === 'number' && Number.isFinite(record.expires_in) && record.expires_in > 0
        ? record.expires_in
        : DEFAULT_TOKEN_LIFETIME_SECONDS;
    return { token, expiresIn };
  }

  #credentialKind(): AuthErrorCredentials {
    if (!this.#credentials) return 'none';
    return hasUserPassword(this.#credentials) ? 'username-password' : 'token';
  }

  #credentialPhrase(): string {
    const kind = this.#credentialKind();
    if (kind === 'none') return 'anonymous access';
    return kind === 'token' ? 'the bearer token' : 'the username and password';
  }

  #authError(request: AuthRequest, problem: string): AuthError {
    return new AuthError(
      `the registry at ${this.#origin} ${problem} for ${request.method} ${request.path}`,
      request.method,
      request.path,
      this.#credentialKind(),
    );
  }
}
