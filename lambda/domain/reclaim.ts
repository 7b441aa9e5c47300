import type { BlobRef, Inventory, Manifest } from './inventory.js';
import type { Digest } from './names.js';

export interface Reclaim {
  /**
   * Bytes of blobs (manifests, configs, layers) that only deleted manifests reference; when storage was listed,
   * of those it holds, by their size there.
   */
  readonly bytes: number;
  readonly blobs: number;
  /** False when the figure can only be an upper bound; `caveats` says why. */
  readonly exact: boolean;
  readonly caveats: readonly string[];
  /**
   * Bytes of blobs in storage that no scanned manifest references at all (left by earlier deletes, or uploaded
   * by a push still in flight): the garbage collector frees these too. Known only when storage was listed and
   * every repository was scanned.
   */
  readonly unreferencedBytes?: number;
}

/** Every blob the garbage collector keeps for a manifest: the manifest itself and what it references. */
export function blobsOf(manifest: Manifest): BlobRef[] {
  return [
    { digest: manifest.digest, size: manifest.size },
    ...(manifest.config ? [manifest.config] : []),
    ...manifest.layers,
    ...manifest.children,
  ];
}

/**
 * The size a blob counts for: when storage was listed, its size there (undefined once storage no longer holds
 * it: the collector cannot free it again); else the size its manifest declares.
 */
export function countedSize(inventory: Inventory): (blob: BlobRef) => number | undefined {
  const stored = inventory.storedBlobs && new Map(inventory.storedBlobs.map((b) => [b.digest, b.size]));
  return stored ? (blob) => stored.get(blob.digest) : (blob) => blob.size;
}

/**
 * The bytes the garbage collector frees once the given manifests are deleted: blobs referenced by deleted
 * manifests and by no kept manifest in any scanned repository. Blobs are shared across repositories on disk,
 * so a blob kept anywhere counts as not freed.
 */
export function reclaim(inventory: Inventory, deleted: ReadonlyMap<string, ReadonlySet<Digest>>): Reclaim {
  const keptBlobs = new Set<Digest>();
  const candidates = new Map<Digest, BlobRef>();
  for (const repository of inventory.repositories) {
    const gone = deleted.get(repository.name);
    for (const manifest of repository.manifests) {
      const isDeleted = gone?.has(manifest.digest) === true;
      for (const blob of blobsOf(manifest)) {
        if (isDeleted) candidates.set(blob.digest, blob);
        else keptBlobs.add(blob.digest);
      }
    }
  }
  const sizeOf = countedSize(inventory);
  let bytes = 0;
  let blobs = 0;
  for (const [digest, blob] of candidates) {
    const freed = sizeOf(blob);
    if (keptBlobs.has(digest) || freed === undefined) continue;
    bytes += freed;
    blobs += 1;
  }

  const caveats: string[] = [];
  if (!inventory.catalogComplete) {
    caveats.push('only some repositories were scanned; blobs they share with the others may stay');
  }
  const failed = inventory.repositories.filter((r) => r.error !== undefined).length;
  if (failed > 0) {
    caveats.push(`${failed} repositories could not be scanned; blobs they share may stay`);
  }
  if (inventory.repositories.some((r) => r.error === undefined && !r.revisionsVisible)) {
    caveats.push('untagged revisions are not visible without the storage root; blobs they share may stay');
  }
  const exact = caveats.length === 0;
  let unreferencedBytes: number | undefined;
  if (exact && inventory.storedBlobs) {
    unreferencedBytes = 0;
    for (const blob of inventory.storedBlobs) {
      if (!keptBlobs.has(blob.digest) && !candidates.has(blob.digest)) unreferencedBytes += blob.size;
    }
  }
  return { bytes, blobs, exact, caveats, ...(unreferencedBytes !== undefined ? { unreferencedBytes } : {}) };
}
