import type { Digest } from './names.js';

/** A blob a manifest points to: a config, a layer, or (for an index) a child manifest. */
export interface BlobRef {
  readonly digest: Digest;
  readonly size: number;
}

export interface ChildRef extends BlobRef {
  readonly mediaType: string;
  /** `os/architecture[/variant]` when the index says so. */
  readonly platform?: string;
}

/**
 * One manifest revision of a repository, as the scan found it. Times are ISO-8601 strings so the inventory
 * survives JSON (it crosses process and network boundaries).
 */
export interface Manifest {
  readonly digest: Digest;
  readonly mediaType: string;
  /** Bytes of the manifest body, which is itself a blob on the registry's disk. */
  readonly size: number;
  readonly kind: 'image' | 'index';
  /** Image manifests: the config blob. Its media type tells images from artifacts (signatures, SBOMs). */
  readonly config?: BlobRef & { readonly mediaType: string };
  /** Image manifests: layer blobs. Empty for an index. */
  readonly layers: readonly BlobRef[];
  /** Index / manifest list: child manifests. Empty for an image. */
  readonly children: readonly ChildRef[];
  /** OCI `subject`: the manifest this one is a signature, attestation or SBOM of. */
  readonly subject?: Digest;
  readonly artifactType?: string;
  /** The image config's `created`: build time, which reproducible builders set to 1970. */
  readonly created?: string;
  /** Last push of this digest into this repository (revision link mtime); only when storage is visible. */
  readonly pushedAt?: string;
}

export interface Tag {
  readonly name: string;
  readonly digest: Digest;
  /** Last push of the tag (tag link mtime); only when storage is visible. */
  readonly pushedAt?: string;
}

export interface Repository {
  readonly name: string;
  readonly tags: readonly Tag[];
  /** Every manifest known in the repository: tagged, children of indexes, referrers, untagged revisions. */
  readonly manifests: readonly Manifest[];
  /** True when untagged revisions were listed from storage, so `manifests` is complete. */
  readonly revisionsVisible: boolean;
  /** The scan of this repository failed; it is reported and left alone. */
  readonly error?: string;
}

export interface Inventory {
  readonly registry: string;
  readonly scannedAt: string;
  /** Every repository in the catalog was scanned (no selection filter cut any out). */
  readonly catalogComplete: boolean;
  readonly repositories: readonly Repository[];
  /** Every blob in storage and its size, when storage was listed; absent otherwise. */
  readonly storedBlobs?: readonly BlobRef[];
}
