// The registry's own grammar for names (distribution/reference). Anything else is rejected before it is
// used in a URL, a log line or a command.
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const MAX_REPOSITORY_LENGTH = 255;

export type Digest = `sha256:${string}`;

export const isRepositoryName = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= MAX_REPOSITORY_LENGTH && REPOSITORY.test(value);

export const isTagName = (value: unknown): value is string => typeof value === 'string' && TAG.test(value);

export const isDigest = (value: unknown): value is Digest => typeof value === 'string' && DIGEST.test(value);

export class InvalidNameError extends Error {
  override readonly name = 'InvalidNameError';
  constructor(
    readonly kind: 'repository' | 'tag' | 'digest',
    readonly value: unknown,
  ) {
    super(`invalid ${kind} name ${printable(value)}`);
  }
}

/**
 * What a terminal or a text view could act on instead of showing: C0 and C1 controls (ESC starts ANSI
 * sequences), DEL, the bidirectional marks, embeddings, overrides and isolates that reorder text, and the
 * Unicode line and paragraph separators.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it finds
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** Text with every unsafe character written as `\uXXXX`, except those in `keep` (a line break, a tab). */
export function escapeControls(text: string, keep = ''): string {
  return text.replace(UNSAFE, (char) =>
    keep.includes(char) ? char : `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A short, single-line, quoted rendering of an untrusted value, safe for messages and terminals. */
export function printable(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  const clipped = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return escapeControls(JSON.stringify(clipped));
}

export function assertRepositoryName(value: unknown): string {
  if (!isRepositoryName(value)) throw new InvalidNameError('repository', value);
  return value;
}

export function assertTagName(value: unknown): string {
  if (!isTagName(value)) throw new InvalidNameError('tag', value);
  return value;
}

export function assertDigest(value: unknown): Digest {
  if (!isDigest(value)) throw new InvalidNameError('digest', value);
  return value;
}
