import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Manifest } from '../domain/inventory.js';
import { type Digest, isDigest, isRepositoryName, isTagName } from '../domain/names.js';
import type { StorageLister, StoredRepository, StoredRevision, StoredTag } from '../ports.js';
import {
  checkedBlob,
  MAX_MANIFEST_BYTES,
  StoredBlobError,
  storedManifest,
  tooLarge,
} from './blob-content.js';
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
/** Synchronous file operations between two turns of the event loop. */
const OPERATIONS_PER_TURN = 512;

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

function directories(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

/** To the millisecond, truncated from the nanoseconds, as the host inventory reads an mtime. */
function mtime(path: string): string | undefined {
  const info = statSync(path, { bigint: true, throwIfNoEntry: false });
  return info && new Date(Number(info.mtimeNs / 1_000_000n)).toISOString();
}

function readIfPresent(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/**
 * Runs synchronous work one task at a time and lets timers and other I/O in every so many operations. The
 * files are small and local: a promise round trip through libuv's four threads per open, stat, read and
 * close costs several times the read itself.
 */
class Pacer {
  private queue: Promise<unknown> = Promise.resolve();
  private operations = 0;

  run<T>(work: () => T): Promise<T> {
    const result = this.queue.then(async () => {
      await this.turn(1);
      return work();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Counts `operations` done, yielding to the event loop once a turn's worth has passed. */
  async turn(operations: number): Promise<void> {
    this.operations += operations;
    if (this.operations < OPERATIONS_PER_TURN) return;
    this.operations = 0;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Reads manifest revisions and tags straight from the filesystem driver's layout under
 * `<root>/docker/registry/v2/repositories`. A revision link's mtime is the last push of that digest.
 */
export class FilesystemStorage implements StorageLister {
  private readonly repositoriesDir: string;
  private readonly blobsDir: string;
  private readonly pacer = new Pacer();
  readonly label: string;
  readonly mismatchFix =
    "Give this registry's storage root, or let the host script read the storage\n" +
    'inside its container: --storage-from-host.';

  constructor(readonly root: string) {
    this.repositoriesDir = join(root, 'docker', 'registry', 'v2', 'repositories');
    this.blobsDir = join(root, 'docker', 'registry', 'v2', 'blobs', 'sha256');
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

  async readManifest(digest: Digest): Promise<Manifest | undefined> {
    const body = await this.read(digest, MAX_MANIFEST_BYTES, 'manifest');
    return body && storedManifest(digest, body);
  }

  async readBlob(digest: Digest, maxBytes: number): Promise<Uint8Array | undefined> {
    const body = await this.read(digest, maxBytes, 'blob');
    return body && checkedBlob(digest, body);
  }

  /** `blobs/sha256/<2 hex>/<hex>/data`, the one copy every repository links to. */
  private read(digest: Digest, maxBytes: number, what: string): Promise<Uint8Array | undefined> {
    if (!isDigest(digest)) return Promise.reject(new StoredBlobError(`not a sha256 digest: ${digest}`));
    const hex = digest.slice('sha256:'.length);
    return this.pacer.run(() => {
      let fd: number;
      try {
        fd = openSync(join(this.blobsDir, hex.slice(0, 2), hex, 'data'), 'r');
      } catch (error) {
        if (isMissing(error)) return undefined;
        throw error;
      }
      try {
        const { size } = fstatSync(fd);
        if (size > maxBytes) throw tooLarge(what, digest, size, maxBytes);
        return readFileSync(fd);
      } finally {
        closeSync(fd);
      }
    });
  }

  async listBlobs(): Promise<Map<Digest, number>> {
    const sizes = new Map<Digest, number>();
    for (const prefix of directories(this.blobsDir)) {
      const hexes = directories(join(this.blobsDir, prefix));
      for (const hex of hexes) {
        if (!HEX.test(hex)) continue;
        const info = statSync(join(this.blobsDir, prefix, hex, 'data'), { throwIfNoEntry: false });
        if (info) sizes.set(`sha256:${hex}`, info.size);
      }
      await this.pacer.turn(hexes.length + 1);
    }
    return sizes;
  }

  private async walk(prefix: string, found: Map<string, StoredRepository>): Promise<void> {
    const dir = prefix ? join(this.repositoriesDir, prefix) : this.repositoriesDir;
    const names = directories(dir);
    if (prefix && names.includes('_manifests') && isRepositoryName(prefix)) {
      const repository = this.readRepository(join(dir, '_manifests'));
      found.set(prefix, repository);
      await this.pacer.turn(repository.revisions.length + 2 * repository.tags.length);
    }
    for (const name of names) {
      if (name.startsWith('_')) continue;
      await this.walk(prefix ? `${prefix}/${name}` : name, found);
    }
  }

  private readRepository(manifestsDir: string): StoredRepository {
    const revisionsDir = join(manifestsDir, 'revisions', 'sha256');
    const revisions: StoredRevision[] = [];
    for (const hex of directories(revisionsDir)) {
      if (!HEX.test(hex)) continue;
      const pushedAt = mtime(join(revisionsDir, hex, 'link'));
      if (pushedAt) revisions.push({ digest: `sha256:${hex}`, pushedAt });
    }
    const tagsDir = join(manifestsDir, 'tags');
    const tags: StoredTag[] = [];
    for (const name of directories(tagsDir)) {
      if (!isTagName(name)) continue;
      const link = join(tagsDir, name, 'current', 'link');
      const pushedAt = mtime(link);
      const digest = pushedAt && readIfPresent(link)?.trim();
      if (isDigest(digest) && pushedAt) tags.push({ name, digest, pushedAt });
    }
    return { revisions, tags };
  }
}
