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

/** A short, single-line rendering of an untrusted value, safe for messages. */
export function printable(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value);
  const clipped = text.length > 80 ? `${text.slice(0, 80)}…` : text;
  return JSON.stringify(clipped);
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
