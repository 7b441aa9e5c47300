import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Digest, isDigest, isRepositoryName, isTagName } from '../domain/names.js';
import type { StorageLister, StoredRepository, StoredRevision, StoredTag } from '../ports.js';
import { StorageRootError } from './errors.js';

export { StorageRootError };

const CONTAINER_ROOT = '/var/lib/registry';
const MOUNT_SOURCE = `{{range .Mounts}}{{if eq .Destination "${CONTAINER_ROOT}"}}{{.Source}}{{end}}{{end}}`;
const FIND_THE_ROOT = [
  '  (no docker/registry/v2 below it). Give storage.filesystem.rootdirectory of',
  "  the registry's config. For a container, that path is inside it; its path on",
  "  the host is the container's mount:",
  `    docker inspect --format '${MOUNT_SOURCE}' registry`,
];
const READ_IN_THE_CONTAINER = '  or read the storage inside the container: --storage-from-host.';

const HEX = /^[a-f0-9]{64}$/;
const BATCH = 64;

async function entries(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

async function inBatches<T, R>(items: readonly T[], work: (item: T) => Promise<R | undefined>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += BATCH) {
    const settled = await Promise.all(items.slice(start, start + BATCH).map(work));
    for (const value of settled) if (value !== undefined) results.push(value);
  }
  return results;
}

/** To the millisecond, truncated from the nanoseconds, as the host inventory reads an mtime. */
async function mtime(path: string): Promise<string | undefined> {
  try {
    return new Date(Number((await stat(path, { bigint: true })).mtimeNs / 1_000_000n)).toISOString();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Reads manifest revisions and tags straight from the filesystem driver's layout under
 * `<root>/docker/registry/v2/repositories`. A revision link's mtime is the last push of that digest.
 */
export class FilesystemStorage implements StorageLister {
  private readonly repositoriesDir: string;
  readonly label: string;
  readonly mismatchFix =
    "Give this registry's storage root, or let the host script read the storage\n" +
    'inside its container: --storage-from-host.';

  constructor(readonly root: string) {
    this.repositoriesDir = join(root, 'docker', 'registry', 'v2', 'repositories');
    this.label = `--storage-root ${root}`;
  }

  async list(): Promise<Map<string, StoredRepository>> {
    try {
      await stat(join(this.root, 'docker', 'registry', 'v2'));
    } catch (error) {
      const lines =
        (error as NodeJS.ErrnoException).code === 'EACCES'
          ? [
              `--storage-root ${this.root} cannot be read (permission denied).`,
              '  Run as a user who may read it (a Docker volume needs root),',
            ]
          : [`--storage-root ${this.root} holds no registry data`, ...FIND_THE_ROOT];
      throw new StorageRootError([...lines, READ_IN_THE_CONTAINER].join('\n'));
    }
    const found = new Map<string, StoredRepository>();
    await this.walk('', found);
    return found;
  }

  async listBlobs(): Promise<Map<Digest, number>> {
    const blobsDir = join(this.root, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    const sizes = new Map<Digest, number>();
    for (const prefix of await entries(blobsDir)) {
      const found = await inBatches(await entries(join(blobsDir, prefix)), async (hex) => {
        if (!HEX.test(hex)) return undefined;
        try {
          return [`sha256:${hex}` as Digest, (await stat(join(blobsDir, prefix, hex, 'data'))).size] as const;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw error;
        }
      });
      for (const [digest, size] of found) sizes.set(digest, size);
    }
    return sizes;
  }

  private async walk(prefix: string, found: Map<string, StoredRepository>): Promise<void> {
    const dir = prefix ? join(this.repositoriesDir, prefix) : this.repositoriesDir;
    const names = await entries(dir);
    if (prefix && names.includes('_manifests') && isRepositoryName(prefix)) {
      found.set(prefix, await this.readRepository(join(dir, '_manifests')));
    }
    for (const name of names) {
      if (name.startsWith('_')) continue;
      await this.walk(prefix ? `${prefix}/${name}` : name, found);
    }
  }

  private async readRepository(manifestsDir: string): Promise<StoredRepository> {
    const revisionsDir = join(manifestsDir, 'revisions', 'sha256');
    const revisions = await inBatches(
      await entries(revisionsDir),
      async (hex): Promise<StoredRevision | undefined> => {
        if (!HEX.test(hex)) return undefined;
        const pushedAt = await mtime(join(revisionsDir, hex, 'link'));
        return pushedAt ? { digest: `sha256:${hex}`, pushedAt } : undefined;
      },
    );
    const tagsDir = join(manifestsDir, 'tags');
    const tags = await inBatches(await entries(tagsDir), async (name): Promise<StoredTag | undefined> => {
      if (!isTagName(name)) return undefined;
      const link = join(tagsDir, name, 'current', 'link');
      try {
        const [content, pushedAt] = await Promise.all([readFile(link, 'utf8'), mtime(link)]);
        const digest = content.trim();
        return isDigest(digest) && pushedAt ? { name, digest, pushedAt } : undefined;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
    });
    return { revisions, tags };
  }
}
