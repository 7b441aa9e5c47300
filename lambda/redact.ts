// What never reaches output. Every text the program shows passes through here at its edge (the command
// line's stdout and stderr, the function's logs, report, notification and metrics, the stack's errors): secrets
// are masked by their shape and, as a last line of defence, by their value; terminal controls are escaped.
import { escapeControls } from './domain/names.js';

export const MASK = '***';

/** Shorter secrets cannot be found in text without masking ordinary words; their shapes are still masked. */
const MIN_SECRET_LENGTH = 4;

/** `scheme://userinfo@`, up to the last `@` of the word: an unencoded password may hold `@`, `/`, `?`. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s"'\\<>]*)@/gi;
/** Names of query parameters and JSON fields that carry a secret; a field's placeholder (`"…"`) is left. */
const SECRET_NAME =
  '[\\w.-]*(?:token|password|passwd|pwd|secret|signature|credential|api[_-]?key|auth|session)[\\w.-]*';
const SECRET_PARAMETER = new RegExp(`([?&;](?:${SECRET_NAME}|key|sig|code)=)[^&#\\s"'\\\\<>]+`, 'gi');
const SECRET_FIELD = new RegExp(
  `("${SECRET_NAME}"\\s*:\\s*")(?:[^"\\\\]|\\\\.){${MIN_SECRET_LENGTH},}(")`,
  'gi',
);
/** An `Authorization` header's value, written as a header, a JSON field or an option. */
const AUTHORIZATION = /\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)[^\r\n"'\\]+/gi;
/** `Bearer <token>` and `Basic <base64>`; a credential has a digit, a capital or a symbol, a word does not. */
const SCHEME_CREDENTIAL =
  /\b([Bb]earer|[Bb]asic)(\s+)(?=[\w.~+/-]*[0-9A-Z.~+/_-])[\w.~+/-]{8,}=*(?![\w.~+/=-])/g;
/** A JSON Web Token: bearer tokens of token servers. */
const JWT = /\beyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*/g;

function maskUserinfo(_: string, scheme: string, userinfo: string): string {
  const colon = userinfo.indexOf(':');
  return colon < 0 ? `${scheme}${MASK}@` : `${scheme}${userinfo.slice(0, colon)}:${MASK}@`;
}

/** Text with the secrets its shape gives away masked: URL passwords, secret parameters, credentials in headers. */
export function redactText(text: string): string {
  return text
    .replace(URL_USERINFO, maskUserinfo)
    .replace(SECRET_PARAMETER, `$1${MASK}`)
    .replace(SECRET_FIELD, `$1${MASK}$2`)
    .replace(AUTHORIZATION, `$1${MASK}`)
    .replace(SCHEME_CREDENTIAL, `$1$2${MASK}`)
    .replace(JWT, MASK);
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The forms a secret takes in output: itself, inside a JSON string, inside a URL. */
function secretForms(secret: string): string[] {
  return [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)];
}

/** Every form of `user:password` an Authorization header or a Docker config carries. */
function basicForms(username: string, password: string): string[] {
  const pair = Buffer.from(`${username}:${password}`, 'utf8');
  const standard = pair.toString('base64');
  const urlSafe = pair.toString('base64url');
  return [`${username}:${password}`, standard, standard.replace(/=+$/, ''), urlSafe];
}

export type KnownCredentials =
  | { readonly username: string; readonly password: string }
  | { readonly token: string };

/**
 * What a run may show: the secret shapes of redactText masked, the secrets the run knows (a password, its
 * `user:password` forms, bearer tokens) masked wherever they appear, and terminal controls escaped.
 */
export class Redactor {
  /** Each form of each secret, longest first, so a longer form is masked before a form inside it. */
  #forms: string[] = [];
  #pattern: RegExp | undefined;

  /** Masks these secrets in everything shown from now on. */
  add(...secrets: readonly (string | undefined)[]): void {
    const forms = new Set(this.#forms);
    for (const secret of secrets) {
      if (secret === undefined || secret.length < MIN_SECRET_LENGTH) continue;
      for (const form of secretForms(secret)) forms.add(form);
    }
    if (forms.size === this.#forms.length) return;
    this.#forms = [...forms].sort((a, b) => b.length - a.length);
    // A secret with spaces may be wrapped onto the next line.
    this.#pattern = new RegExp(
      this.#forms.map((form) => escapeRegExp(form).replace(/ +/g, '\\s+')).join('|'),
      'g',
    );
  }

  /** Masks the password and its `user:password` forms, or the token. */
  addCredentials(credentials: KnownCredentials | undefined): void {
    if (!credentials) return;
    if ('token' in credentials) this.add(credentials.token);
    else this.add(credentials.password, ...basicForms(credentials.username, credentials.password));
  }

  /** Text as it may be shown; line breaks and tabs stay. */
  text(text: string): string {
    // Known secrets first: a shape may end inside one (a password holding "&" in a query).
    const masked = this.#pattern ? text.replace(this.#pattern, MASK) : text;
    return escapeControls(redactText(masked), '\n\t');
  }

  /** A copy of a JSON-like value with every string, keys included, as text() shows it. */
  value<T>(value: T): T {
    return this.#copy(value) as T;
  }

  #copy(value: unknown): unknown {
    if (typeof value === 'string') return this.text(value);
    if (Array.isArray(value)) return value.map((item) => this.#copy(item));
    if (typeof value !== 'object' || value === null) return value;
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [this.text(key), this.#copy(item)]));
  }
}
