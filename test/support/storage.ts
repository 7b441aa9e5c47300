import { readdir, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { type PushedImage, pushImage, registryRequest } from './images.js';
import type { TestRegistry } from './registry.js';

export function storageRoot(reg: TestRegistry): string {
  return join(reg.root, 'docker', 'registry', 'v2');
}

function hexOf(digest: string): string {
  const match = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!match?.[1]) throw new Error(`not a sha256 digest: ${digest}`);
  return match[1];
}

export function revisionLinkPath(reg: TestRegistry, repository: string, digest: string): string {
  return join(
    storageRoot(reg),
    'repositories',
    repository,
    '_manifests',
    'revisions',
    'sha256',
    hexOf(digest),
    'link',
  );
}

export function tagLinkPath(reg: TestRegistry, repository: string, tag: string): string {
  return join(storageRoot(reg), 'repositories', repository, '_manifests', 'tags', tag, 'current', 'link');
}

export function blobDataPath(reg: TestRegistry, digest: string): string {
  const hex = hexOf(digest);
  return join(storageRoot(reg), 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

export async function setRevisionPushTime(
  reg: TestRegistry,
  repository: string,
  digest: string,
  when: Date,
): Promise<void> {
  await utimes(revisionLinkPath(reg, repository, digest), when, when);
}

export async function setTagPushTime(
  reg: TestRegistry,
  repository: string,
  tag: string,
  when: Date,
): Promise<void> {
  await utimes(tagLinkPath(reg, repository, tag), when, when);
}

/** Makes a push look `days` old: the revision's push time, and the tag's when one is given. */
export async function backdate(
  reg: TestRegistry,
  repository: string,
  digest: string,
  days: number,
  tag?: string,
): Promise<void> {
  const when = new Date(Date.now() - days * 86_400_000);
  await setRevisionPushTime(reg, repository, digest, when);
  if (tag) await setTagPushTime(reg, repository, tag, when);
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Every blob on disk (manifests included), digest → size of its `data` file. */
export async function blobSizes(reg: TestRegistry): Promise<Map<string, number>> {
  const base = join(storageRoot(reg), 'blobs', 'sha256');
  const sizes = new Map<string, number>();
  for (const prefix of await entries(base)) {
    for (const hex of await entries(join(base, prefix))) {
      try {
        const info = await stat(join(base, prefix, hex, 'data'));
        sizes.set(`sha256:${hex}`, info.size);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
  return sizes;
}

/** Bytes of the blobs present in `before` and gone from `after`. */
export function freedBytes(before: Map<string, number>, after: Map<string, number>): number {
  let total = 0;
  for (const [digest, size] of before) {
    if (!after.has(digest)) total += size;
  }
  return total;
}

/** Opens a blob upload and leaves it in progress; its id, as named under `_uploads/`. */
export async function startUpload(reg: TestRegistry, repository: string): Promise<string> {
  const res = await registryRequest(reg, 'POST', `/v2/${repository}/blobs/uploads/`, {
    scope: `repository:${repository}:pull,push`,
  });
  if (res.status !== 202) {
    throw new Error(`starting upload to ${repository}: HTTP ${res.status} ${Buffer.from(res.body)}`);
  }
  const id = res.headers['docker-upload-uuid'];
  const value = Array.isArray(id) ? id[0] : id;
  if (!value) throw new Error('upload started without Docker-Upload-UUID');
  return value;
}

/** Upload ids in progress for a repository, as found under `_uploads/`. */
export async function uploadsInProgress(reg: TestRegistry, repository: string): Promise<string[]> {
  return entries(join(storageRoot(reg), 'repositories', repository, '_uploads'));
}

/**
 * The smallest push history with something stale: `old`, pushed ten days ago, and `new`, pushed now; under
 * `--keep-last 1`, old goes.
 */
export async function pushStaleAndCurrent(
  reg: TestRegistry,
  repository: string,
  opts: { staleLayerSizes?: number[]; currentLayerSizes?: number[] } = {},
): Promise<{ stale: PushedImage; current: PushedImage }> {
  const stale = await pushImage(reg, repository, 'old', { layerSizes: opts.staleLayerSizes ?? [1024] });
  await backdate(reg, repository, stale.digest, 10, 'old');
  const current = await pushImage(reg, repository, 'new', { layerSizes: opts.currentLayerSizes ?? [1024] });
  return { stale, current };
}

/** Every manifest revision and tag link in storage, as `<repository>/_manifests/…/link`, sorted. */
export async function manifestLinks(reg: TestRegistry): Promise<string[]> {
  const base = join(storageRoot(reg), 'repositories');
  const found = await readdir(base, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  return found.filter((path) => path.includes('/_manifests/') && path.endsWith('/link')).sort();
}
