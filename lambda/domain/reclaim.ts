import { DigestMap } from './digest-table.js';
import type { BlobRef, Inventory, Manifest, Repository } from './inventory.js';
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

/**
 * Calls `visit` for every blob the garbage collector keeps for a manifest: the manifest itself and what it
 * references.
 */
export function eachBlob(manifest: Manifest, visit: (digest: Digest, size: number) => void): void {
  visit(manifest.digest, manifest.size);
  if (manifest.config) visit(manifest.config.digest, manifest.config.size);
  for (const layer of manifest.layers) visit(layer.digest, layer.size);
  for (const child of manifest.children) visit(child.digest, child.size);
}

/** Every blob the garbage collector keeps for a manifest, as a list. */
export function blobsOf(manifest: Manifest): BlobRef[] {
  const blobs: BlobRef[] = [];
  eachBlob(manifest, (digest, size) => blobs.push({ digest, size }));
  return blobs;
}

/**
 * The size a blob counts for: when storage was listed, its size there (undefined once storage no longer holds
 * it: the collector cannot free it again); else the size its manifest declares.
 */
export function countedSize(inventory: Inventory): (blob: BlobRef) => number | undefined {
  const stored = inventory.storedBlobs && new Map(inventory.storedBlobs.map((b) => [b.digest, b.size]));
  return stored ? (blob) => stored.get(blob.digest) : (blob) => blob.size;
}

/** Marks, in reclaim's table of blobs, a blob some kept manifest references. */
const KEPT = -1;

// Reclaim looks at every blob of the inventory, close to a million at 100,000 tags. It takes them a share at a
// time (a half), by a character of the digest, so that its table holds only that share: the passes over the
// inventory cost less than one table of all of them would.
const SHARDS = 2;
const shardOf = (digest: string): number => digest.charCodeAt(digest.length - 1) % SHARDS;

/** Which manifests go: for each repository, a flag per manifest of its list, in the inventory's order. */
export type DeletedFlags = readonly (Uint8Array | undefined)[];

/**
 * The bytes the garbage collector frees once the given manifests are deleted: blobs referenced by deleted
 * manifests and by no kept manifest in any scanned repository. Blobs are shared across repositories on disk,
 * so a blob kept anywhere counts as not freed.
 */
export function reclaim(inventory: Inventory, deleted: ReadonlyMap<string, ReadonlySet<Digest>>): Reclaim {
  return reclaimFlagged(
    inventory,
    inventory.repositories.map((repository) => {
      const gone = deleted.get(repository.name);
      return gone && Uint8Array.from(repository.manifests, (manifest) => (gone.has(manifest.digest) ? 1 : 0));
    }),
  );
}

/** `reclaim`, with the deleted manifests flagged where they are listed. */
export function reclaimFlagged(inventory: Inventory, deleted: DeletedFlags): Reclaim {
  // One entry per blob: KEPT once a kept manifest references it, else the size a deleted manifest declares.
  const blobState = new DigestMap<number>();
  const stored = inventory.storedBlobs && new DigestMap<number>();
  let bytes = 0;
  let blobs = 0;
  let unreferenced = 0;
  let shard = 0;
  let isDeleted = false;
  const note = (digest: Digest, size: number) => {
    if (shardOf(digest) !== shard) return;
    if (!isDeleted) blobState.set(digest, KEPT);
    else if (blobState.get(digest) !== KEPT) blobState.set(digest, size);
  };
  for (; shard < SHARDS; shard++) {
    blobState.clear();
    for (let r = 0; r < inventory.repositories.length; r++) {
      const { manifests } = inventory.repositories[r] as Repository;
      const flags = deleted[r];
      for (let m = 0; m < manifests.length; m++) {
        isDeleted = flags !== undefined && flags[m] === 1;
        eachBlob(manifests[m] as Manifest, note);
      }
    }
    if (stored) {
      stored.clear();
      for (const blob of inventory.storedBlobs ?? []) {
        if (shardOf(blob.digest) !== shard) continue;
        stored.set(blob.digest, blob.size);
        if (!blobState.has(blob.digest)) unreferenced += blob.size;
      }
    }
    blobState.forEach((size, digest) => {
      if (size === KEPT) return;
      const freed = stored ? stored.get(digest) : size;
      if (freed === undefined) return;
      bytes += freed;
      blobs += 1;
    });
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
  if (exact && inventory.storedBlobs) unreferencedBytes = unreferenced;
  return { bytes, blobs, exact, caveats, ...(unreferencedBytes !== undefined ? { unreferencedBytes } : {}) };
}
