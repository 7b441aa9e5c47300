import type { Inventory, Repository } from './inventory.js';
import type { Digest } from './names.js';
import { blobsOf, countedSize, reclaim } from './reclaim.js';

export interface RepositoryUsage {
  readonly name: string;
  /** Every blob the repository's manifests reference, the manifests themselves included, each counted once. */
  readonly totalBytes: number;
  /** What deleting the whole repository would free: the blobs no other repository references. */
  readonly exclusiveBytes: number;
  /** The blobs other repositories reference too: totalBytes less exclusiveBytes. */
  readonly sharedBytes: number;
  /** What deleting its untagged manifests would free: the blobs only manifests no tag leads to reference. */
  readonly untaggedBytes: number;
}

export interface Usage {
  /** Every repository scanned without error, the largest exclusiveBytes first, then by name. */
  readonly repositories: readonly RepositoryUsage[];
  /** Every blob storage holds, when its blobs were listed; null otherwise. */
  readonly registryBytes: number | null;
  /** Every blob the scanned repositories reference, each counted once. */
  readonly referencedBytes: number;
  /**
   * Blobs in storage that no manifest references (earlier deletes, a push in flight): the next garbage
   * collection frees them. Null unless storage was listed and every repository was scanned.
   */
  readonly unreferencedBytes: number | null;
  /** False when a repository's exclusive and untagged figures can only be upper bounds; `caveats` says why. */
  readonly exact: boolean;
  readonly caveats: readonly string[];
}

/**
 * The manifests of a repository a tag leads to: the tagged ones, the children of those, and the manifests
 * that name one of them as their subject, with their children in turn.
 */
function taggedReach(repository: Repository): Set<Digest> {
  const byDigest = new Map(repository.manifests.map((manifest) => [manifest.digest, manifest]));
  const referrers = new Map<Digest, Digest[]>();
  for (const manifest of repository.manifests) {
    if (manifest.subject === undefined) continue;
    referrers.set(manifest.subject, [...(referrers.get(manifest.subject) ?? []), manifest.digest]);
  }
  const reached = new Set<Digest>();
  const queue = repository.tags.map((tag) => tag.digest);
  for (let digest = queue.pop(); digest !== undefined; digest = queue.pop()) {
    if (reached.has(digest)) continue;
    reached.add(digest);
    queue.push(...(byDigest.get(digest)?.children.map((child) => child.digest) ?? []));
    queue.push(...(referrers.get(digest) ?? []));
  }
  return reached;
}

interface Holding {
  readonly size: number;
  /** The repositories whose manifests reference the blob. */
  readonly holders: Set<string>;
  /** Whether a manifest some tag leads to references it. */
  tagged: boolean;
}

/**
 * The space each repository takes, counted as the garbage collector frees it (the rules of `reclaim`): blobs
 * are shared by every repository on disk, so a blob counts as exclusive only when no other scanned repository
 * references it, and as untagged only when no manifest a tag leads to does.
 */
export function usage(inventory: Inventory): Usage {
  const sizeOf = countedSize(inventory);
  const blobs = new Map<Digest, Holding>();
  for (const repository of inventory.repositories) {
    const reach = taggedReach(repository);
    for (const manifest of repository.manifests) {
      const tagged = reach.has(manifest.digest);
      for (const blob of blobsOf(manifest)) {
        let holding = blobs.get(blob.digest);
        if (!holding) {
          const size = sizeOf(blob);
          if (size === undefined) continue;
          holding = { size, holders: new Set(), tagged: false };
          blobs.set(blob.digest, holding);
        }
        holding.holders.add(repository.name);
        holding.tagged ||= tagged;
      }
    }
  }

  const figures = new Map(
    inventory.repositories
      .filter((repository) => repository.error === undefined)
      .map((repository) => [
        repository.name,
        { name: repository.name, totalBytes: 0, exclusiveBytes: 0, sharedBytes: 0, untaggedBytes: 0 },
      ]),
  );
  let referencedBytes = 0;
  for (const { size, holders, tagged } of blobs.values()) {
    referencedBytes += size;
    for (const name of holders) {
      const figure = figures.get(name);
      if (!figure) continue;
      figure.totalBytes += size;
      if (holders.size > 1) figure.sharedBytes += size;
      else {
        figure.exclusiveBytes += size;
        if (!tagged) figure.untaggedBytes += size;
      }
    }
  }

  const { exact, caveats, unreferencedBytes } = reclaim(inventory, new Map());
  return {
    repositories: [...figures.values()].sort(
      (a, b) => b.exclusiveBytes - a.exclusiveBytes || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    ),
    registryBytes: inventory.storedBlobs
      ? inventory.storedBlobs.reduce((sum, blob) => sum + blob.size, 0)
      : null,
    referencedBytes,
    unreferencedBytes: unreferencedBytes ?? null,
    exact,
    caveats,
  };
}
