/** The secrets of a run, as a test knows them. */
export interface RunSecrets {
  readonly username?: string;
  readonly password?: string;
  /** Bearer tokens: those a token server issued, or one a secret holds. */
  readonly tokens?: readonly string[];
}

/** A password shorter than this has no fragment worth searching for. */
const FRAGMENT = 8;

/**
 * The forms of the secrets that appear in `output`, by name (never by value, so a failing assertion does not
 * print them): the password, any 8-character piece of it, `user:password`, its base64 forms (standard, padded
 * or not, and URL-safe), the password percent-encoded, and each bearer token or its signature.
 */
export function secretLeaks(output: string, secrets: RunSecrets): string[] {
  const forms: [string, string][] = [];
  const { username = '', password, tokens = [] } = secrets;
  if (password !== undefined) {
    const pair = Buffer.from(`${username}:${password}`, 'utf8');
    forms.push(
      ['the password', password],
      ['the password percent-encoded', encodeURIComponent(password)],
      ['user:password', `${username}:${password}`],
      ['base64 of user:password', pair.toString('base64')],
      ['base64 of user:password unpadded', pair.toString('base64').replace(/=+$/, '')],
      ['URL-safe base64 of user:password', pair.toString('base64url')],
    );
    for (let start = 0; start + FRAGMENT <= password.length; start++) {
      forms.push([
        `the password's characters ${start}–${start + FRAGMENT}`,
        password.slice(start, start + FRAGMENT),
      ]);
    }
  }
  tokens.forEach((token, index) => {
    forms.push([`bearer token #${index + 1}`, token]);
    const signature = token.split('.').at(-1) ?? '';
    if (signature.length >= FRAGMENT && signature !== token)
      forms.push([`bearer token #${index + 1}'s signature`, signature]);
  });
  const found = forms.filter(([, value]) => value.length > 0 && output.includes(value)).map(([name]) => name);
  return [...new Set(found)];
}
