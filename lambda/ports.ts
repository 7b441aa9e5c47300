import type { Digest } from './domain/names.js';

/** A manifest as the registry served it; the digest is checked against the body's sha256. */
export interface FetchedManifest {
  readonly digest: Digest;
  readonly mediaType: string;
  readonly body: Uint8Array;
}

export type DeleteOutcome = 'deleted' | 'already-gone';

/** The registry's HTTP API, sized to what the scan, the cleanup and the verification call. */
export interface Registry {
  /** Every repository in the catalog, following pagination. Invalid names are reported through onInvalid. */
  listRepositories(): Promise<string[]>;
  /** Every tag of a repository (empty when the registry says `null`), following pagination. */
  listTags(repository: string): Promise<string[]>;
  /** GET a manifest by tag or digest with every manifest media type accepted. Undefined on 404. */
  getManifest(repository: string, reference: string): Promise<FetchedManifest | undefined>;
  /** HEAD a manifest by tag or digest; the digest it resolves to, undefined on 404. */
  resolveManifest(repository: string, reference: string): Promise<Digest | undefined>;
  /** GET a blob (an image config), at most maxBytes; the digest is checked. */
  getBlob(repository: string, digest: Digest, maxBytes: number): Promise<Uint8Array>;
  /** HEAD a blob: its size, undefined on 404. */
  statBlob(repository: string, digest: Digest): Promise<number | undefined>;
  /** DELETE a manifest by digest. Throws DeleteRefusedError on 405. */
  deleteManifest(repository: string, digest: Digest): Promise<DeleteOutcome>;
}

export interface StoredRevision {
  readonly digest: Digest;
  readonly pushedAt: string;
}

export interface StoredTag {
  readonly name: string;
  readonly digest: Digest;
  readonly pushedAt: string;
}

export interface StoredRepository {
  readonly revisions: readonly StoredRevision[];
  readonly tags: readonly StoredTag[];
}

/** The storage half of the scan: manifest revisions (tagged or not) and their push times. */
export interface StorageLister {
  list(): Promise<Map<string, StoredRepository>>;
}

export interface Clock {
  now(): Date;
}

/** Progress for a person watching a long run; the engine never prints. */
export interface Progress {
  update(message: string): void;
}
