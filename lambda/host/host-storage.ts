import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Manifest } from '../domain/inventory.js';
import { type Digest, isDigest, isRepositoryName, isTagName, printable } from '../domain/names.js';
import type {
  HostParams,
  HostRun,
  HostRunner,
  StorageLister,
  StoredRepository,
  StoredRevision,
  StoredTag,
} from '../ports.js';
import { checkedBlob, MAX_MANIFEST_BYTES, storedManifest, tooLarge } from '../storage/blob-content.js';
import { TarReader } from './tar.js';

/** Epoch seconds, with the fraction of a second the host's `stat` gave, if any. */
const EPOCH_SECONDS = /^([0-9]{1,12})(?:\.([0-9]{1,9}))?$/;
/** One line of `base64` output: 76 characters at most, padding only at the end. */
const BASE64_LINE = /^[A-Za-z0-9+/]{1,76}={0,2}$/;
/** An archive member: a blob's `data` file under blobs/sha256. */
const BLOB_PATH = /^([a-f0-9]{2})\/([a-f0-9]{64})\/data$/;
/** Base64 lines decoded at once (about 1 MiB): whole lines of 76 characters decode on their own. */
const LINES_PER_CHUNK = 16384;
/**
 * What the gunzip stream hands over at a time. Its 16 KiB default makes a thousand small turns of the
 * pipeline per 16 MiB of tar; a larger piece bounds memory as well, and keeps the reader's copies few.
 */
const INFLATE_CHUNK_BYTES = 1024 * 1024;

interface Building {
  readonly revisions: StoredRevision[];
  readonly tags: StoredTag[];
}

/** To the millisecond, truncated, as FilesystemStorage reads an mtime. */
function pushedAt(epochSeconds: string | undefined): string | undefined {
  const match = EPOCH_SECONDS.exec(epochSeconds ?? '');
  if (!match) return undefined;
  const milliseconds = Number((match[2] ?? '').padEnd(3, '0').slice(0, 3));
  const date = new Date(Number(match[1]) * 1000 + milliseconds);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

export interface HostInventory {
  readonly repositories: Map<string, StoredRepository>;
  /** The base64 lines of the manifests' archive (tar, gzip-compressed), in order. */
  readonly archive: readonly string[];
}

/**
 * Reads the host script's inventory lines (`R <repository>`, then its `V <hex> <mtime>` and
 * `T <tag> <hex> <mtime>` lines, and `M <base64>` lines of the manifests' archive). Every name, tag and
 * digest is checked against the registry's grammar; a line that fails, or that belongs to a repository that
 * failed, is skipped and passed to `onInvalid`.
 */
export function parseInventory(
  text: string,
  onInvalid?: (line: string, lineNumber: number) => void,
): HostInventory {
  const found = new Map<string, Building>();
  const archive: string[] = [];
  let current: Building | undefined;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    let line = lines[index] ?? '';
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line === '') continue;
    // Most lines are the archive's: checked whole, without splitting them into fields.
    if (line.startsWith('M ')) {
      const encoded = line.slice(2);
      if (BASE64_LINE.test(encoded)) archive.push(encoded);
      else onInvalid?.(line, index + 1);
      continue;
    }
    const [kind, ...fields] = line.split(' ');
    let valid = false;
    if (kind === 'R' && fields.length === 1) {
      const name = fields[0];
      current = undefined;
      if (isRepositoryName(name)) {
        current = found.get(name) ?? { revisions: [], tags: [] };
        found.set(name, current);
        valid = true;
      }
    } else if (kind === 'V' && fields.length === 2 && current) {
      const digest = `sha256:${fields[0]}`;
      const when = pushedAt(fields[1]);
      if (isDigest(digest) && when) {
        current.revisions.push({ digest, pushedAt: when });
        valid = true;
      }
    } else if (kind === 'T' && fields.length === 3 && current) {
      const [name, hex, mtime] = fields;
      const digest = `sha256:${hex}`;
      const when = pushedAt(mtime);
      if (isTagName(name) && isDigest(digest) && when) {
        current.tags.push({ name, digest, pushedAt: when });
        valid = true;
      }
    }
    if (!valid) onInvalid?.(line, index + 1);
  }
  return { repositories: found, archive };
}

function* decoded(lines: readonly string[]): Generator<Buffer> {
  for (let start = 0; start < lines.length; start += LINES_PER_CHUNK) {
    yield Buffer.from(lines.slice(start, start + LINES_PER_CHUNK).join(''), 'base64');
  }
}

/**
 * The blobs of the archive (the manifests and their configs), by digest, as stored: checked against their
 * digests only when read. Of one too large for a manifest or a config, only its size. A member that is not a
 * blob's `data` file is skipped and passed to `onInvalid`.
 */
export async function readBlobArchive(
  lines: readonly string[],
  onInvalid?: (name: string) => void,
): Promise<Map<Digest, Uint8Array | number>> {
  const blobs = new Map<Digest, Uint8Array | number>();
  if (lines.length === 0) return blobs;
  const reader = new TarReader(MAX_MANIFEST_BYTES);
  await pipeline(
    Readable.from(decoded(lines)),
    createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }),
    async (chunks: AsyncIterable<Buffer>) => {
      for await (const chunk of chunks) {
        for (const entry of reader.push(chunk)) {
          const [, prefix, hex] = BLOB_PATH.exec(entry.name) ?? [];
          if (hex === undefined || hex.slice(0, 2) !== prefix) {
            onInvalid?.(entry.name);
            continue;
          }
          blobs.set(`sha256:${hex}`, entry.body ?? entry.size);
        }
      }
    },
  );
  reader.end();
  return blobs;
}

/** The host inventory could not be used; the message says what to fix. */
export class HostInventoryError extends Error {
  override readonly name = 'HostInventoryError';
  readonly code = 'RJ_HOST_INVENTORY';
}

export interface HostStorageOptions {
  /** Called for each inventory line that was skipped; libraries don't log, the caller does. */
  readonly onInvalid?: (message: string) => void;
  /** How messages name this storage. @default "the storage of container <container>" */
  readonly label?: string;
  /** What to do when the storage belongs to another registry; the default names the container and its root. */
  readonly mismatchFix?: string;
}

function runnerReason(run: HostRun): string | undefined {
  const reason = (run as { reason?: unknown }).reason;
  return typeof reason === 'string' ? reason : undefined;
}

/**
 * The storage half of the scan, read on the registry host by the host script's `inventory` action: tags,
 * revisions and push times, and the manifests themselves, so that the scan reads none through the API.
 */
export class HostStorage implements StorageLister {
  readonly label: string;
  readonly mismatchFix: string;
  private blobs = new Map<Digest, Uint8Array | number>();
  private readonly manifests = new Map<Digest, Manifest | Error>();

  constructor(
    private readonly runner: HostRunner,
    private readonly params: HostParams = {},
    private readonly options: HostStorageOptions = {},
  ) {
    const container = params.container ?? 'registry';
    this.label = options.label ?? `the storage of container ${container}`;
    this.mismatchFix =
      options.mismatchFix ??
      `Check that container ${container} runs this registry, with its storage in\n${params.storageRoot ?? '/var/lib/registry'}.`;
  }

  async list(): Promise<Map<string, StoredRepository>> {
    const run = await this.runner.run('inventory', this.params);
    if (run.state === 'running') {
      throw new HostInventoryError(
        `the inventory was still running on the registry host when the runner stopped waiting (command ${run.commandId ?? 'unknown'}): allow the run more time`,
      );
    }
    const summary = run.summary;
    if (!summary) {
      throw new HostInventoryError(
        `the host script printed no summary (exit ${run.exitCode ?? 'unknown'})${runnerReason(run) ? `: ${runnerReason(run)}` : ''}`,
      );
    }
    if (summary.status !== 'done') {
      throw new HostInventoryError(
        `the inventory ${summary.status} on the registry host (exit ${run.exitCode ?? 'unknown'}): ${summary.reason ?? 'no reason given'}`,
      );
    }
    if (run.output === undefined) {
      throw new HostInventoryError(
        runnerReason(run) ??
          'the inventory did not fit in the SSM output: configure an output bucket so the runner can read all of it',
      );
    }

    if (typeof summary.manifests !== 'number') {
      throw new HostInventoryError(
        "the inventory carried no manifests: the host script is from another version of registry-janitor (deploy the stack again so that its SSM document has this version's script)",
      );
    }

    let skipped = 0;
    const { repositories, archive } = parseInventory(run.output, (line, lineNumber) => {
      skipped++;
      this.options.onInvalid?.(`skipped invalid inventory line ${lineNumber}: ${printable(line)}`);
    });
    let lines = skipped + repositories.size + archive.length;
    for (const repository of repositories.values())
      lines += repository.revisions.length + repository.tags.length;
    const announced = [
      summary.repositories,
      summary.revisions,
      summary.tags,
      summary.archiveLines,
    ].reduce<number>((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
    if (lines !== announced) {
      throw new HostInventoryError(
        `the inventory output is incomplete: the host script printed ${announced} lines, ${lines} arrived`,
      );
    }
    try {
      this.manifests.clear();
      this.blobs = await readBlobArchive(archive, (name) =>
        this.options.onInvalid?.(`skipped invalid manifest archive entry ${printable(name)}`),
      );
    } catch (error) {
      throw new HostInventoryError(
        `the manifests in the inventory output cannot be read: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    return repositories;
  }

  /** From the manifests the last inventory carried, each checked and parsed once. */
  async readManifest(digest: Digest): Promise<Manifest | undefined> {
    let manifest = this.manifests.get(digest);
    if (manifest === undefined) {
      const body = this.blobs.get(digest);
      if (body === undefined) return undefined;
      manifest = asError(() => {
        if (typeof body === 'number') throw tooLarge('manifest', digest, body, MAX_MANIFEST_BYTES);
        return storedManifest(digest, body);
      });
      this.manifests.set(digest, manifest);
    }
    if (manifest instanceof Error) throw manifest;
    return manifest;
  }

  /** From the blobs the last inventory carried: the configs of its manifests. */
  async readBlob(digest: Digest, maxBytes: number): Promise<Uint8Array | undefined> {
    const body = this.blobs.get(digest);
    if (body === undefined) return undefined;
    const size = typeof body === 'number' ? body : body.byteLength;
    if (typeof body === 'number' || size > maxBytes) throw tooLarge('blob', digest, size, maxBytes);
    return checkedBlob(digest, body);
  }
}

function asError<T>(work: () => T): T | Error {
  try {
    return work();
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}
