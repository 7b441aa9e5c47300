import type { Manifest, Tag } from './inventory.js';
import type { Digest } from './names.js';

export interface ImageTimes {
  readonly pushed?: string;
  readonly created?: string;
}

/** An image's push and build times; an index takes its newest child's where it has none of its own. */
export function imageTimes(manifest: Manifest, byDigest: ReadonlyMap<Digest, Manifest>): ImageTimes {
  const newestChild = (pick: (m: Manifest) => string | undefined) => {
    let newest: string | undefined;
    for (const child of manifest.children) {
      const found = byDigest.get(child.digest);
      const at = found ? pick(found) : undefined;
      if (at !== undefined && (newest === undefined || Date.parse(at) > Date.parse(newest))) newest = at;
    }
    return newest;
  };
  const pushed =
    manifest.pushedAt ?? (manifest.kind === 'index' ? newestChild((m) => m.pushedAt) : undefined);
  const created = manifest.created ?? (manifest.kind === 'index' ? newestChild((m) => m.created) : undefined);
  return { ...(pushed !== undefined ? { pushed } : {}), ...(created !== undefined ? { created } : {}) };
}

/** Where an image stands among the others of its repository. Times in epoch milliseconds. */
export interface Recency {
  readonly digest: Digest;
  readonly at: number;
  /** Build time, when it is known and plausible. */
  readonly built?: number;
}

const builtOrOldest = (recency: Recency) => recency.built ?? Number.NEGATIVE_INFINITY;

/**
 * keep-last's order, newest first: by time; images pushed at the same moment (a CI job pushing several tags
 * in one second) by build time, an unknown one last; then by digest, so the order never depends on the
 * order the inventory lists them in.
 */
export function byRecency(a: Recency, b: Recency): number {
  if (a.at !== b.at) return b.at - a.at;
  if (builtOrOldest(a) !== builtOrOldest(b)) return builtOrOldest(b) > builtOrOldest(a) ? 1 : -1;
  if (a.digest === b.digest) return 0;
  return a.digest < b.digest ? -1 : 1;
}

/**
 * The image manifests whose build time ranks tagged manifests that share a push time: those images, and the
 * children of such an index. The scan fetches their configs; other images are ranked by push time alone.
 */
export function buildTimesNeeded(tags: readonly Tag[], manifests: readonly Manifest[]): Digest[] {
  const byDigest = new Map(manifests.map((manifest) => [manifest.digest, manifest]));
  const byPushTime = new Map<number, Manifest[]>();
  for (const digest of new Set(tags.map((tag) => tag.digest))) {
    const manifest = byDigest.get(digest);
    const pushed = manifest ? imageTimes(manifest, byDigest).pushed : undefined;
    if (!manifest || pushed === undefined) continue;
    const at = Date.parse(pushed);
    byPushTime.set(at, [...(byPushTime.get(at) ?? []), manifest]);
  }
  const needed = new Set<Digest>();
  for (const tied of byPushTime.values()) {
    if (tied.length < 2) continue;
    for (const manifest of tied) {
      if (manifest.kind === 'image') needed.add(manifest.digest);
      for (const child of manifest.children) needed.add(child.digest);
    }
  }
  return [...needed].sort();
}
