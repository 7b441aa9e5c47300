import { createHash } from 'node:crypto';
import type { Manifest } from '../domain/inventory.js';
import { parseManifest } from '../domain/manifest.js';
import type { Digest } from '../domain/names.js';

/** The registry refuses manifests larger than this on push, so storage holds none larger. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** A blob read from storage that cannot be what its digest names: damaged storage, or a copy changed under it. */
export class StoredBlobError extends Error {
  override readonly name = 'StoredBlobError';
  readonly code = 'RJ_STORED_BLOB';
}

export function sha256(body: Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** Why a blob too large for what it should be is not read. */
export function tooLarge(what: string, digest: Digest, size: number, maxBytes: number): StoredBlobError {
  return new StoredBlobError(
    `${what} ${digest} in storage is ${size} bytes, more than the ${maxBytes} it may have`,
  );
}

/** The body, once it hashes to the digest it was stored under. */
export function checkedBlob(digest: Digest, body: Uint8Array, what = 'blob'): Uint8Array {
  const hashed = sha256(body);
  if (hashed !== digest) {
    throw new StoredBlobError(
      `${what} ${digest} in storage does not match its digest: the content hashes to ${hashed}`,
    );
  }
  return body;
}

/**
 * A manifest revision's blob as the API would serve it: checked against its digest, its media type taken from
 * the body as the registry does when it answers.
 */
export function storedManifest(digest: Digest, body: Uint8Array): Manifest {
  return parseManifest(digest, '', checkedBlob(digest, body, 'manifest'));
}
