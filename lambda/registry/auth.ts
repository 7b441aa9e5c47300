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

export interface CachedToken {
  readonly token: string;
  readonly expiresAt: number;
}

/** Bearer tokens per scope, and which scope the registry asked for when a call's own scope differed. */
export class TokenCache {
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

export const DEFAULT_TOKEN_LIFETIME_SECONDS = 60;

export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

export function hasUserPassword(
  credentials: Credentials | undefined,
): credentials is { readonly username: string; readonly password: string } {
  return credentials !== undefined && 'username' in credentials;
}
