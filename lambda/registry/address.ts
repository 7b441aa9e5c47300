// The registry's address as a person or a setting gives it: checked, and shown without credentials.

/** http(s) origin of the registry; a trailing `/` or `/v2/` is accepted and dropped. */
export function registryOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username || url.password || url.search || url.hash) return undefined;
  if (!['', '/', '/v2', '/v2/'].includes(url.pathname)) return undefined;
  return url.origin;
}

/** A URL that carries a user name or password, without them; undefined for any other text. */
export function withoutCredentials(value: string): string | undefined {
  if (!URL.canParse(value)) return undefined;
  const url = new URL(value);
  if (!url.username && !url.password) return undefined;
  url.username = '';
  url.password = '';
  return registryOrigin(url.href) ?? url.href;
}
