import { Interner } from './domain/interning.js';
import type { Inventory, Manifest, Repository, Tag } from './domain/inventory.js';
import { IMAGE_CONFIG_TYPES, parseConfigCreated, parseManifest } from './domain/manifest.js';
import type { Digest } from './domain/names.js';
import { buildTimesNeeded } from './domain/recency.js';
import { repositoryFilter } from './domain/selection.js';
import {
  compareCatalogs,
  compareDigest,
  compareTagLists,
  type Disagreement,
  disagreementKey,
  mismatchMessage,
  sampleRepositories,
  tagsToResolve,
} from './domain/storage-agreement.js';
import { errorMessage } from './error-message.js';
import { createLimit, type Limit } from './limit.js';
import type { Progress, Registry, StorageLister, StoredRepository } from './ports.js';
import { StorageRootError } from './storage/errors.js';

export interface ScanOptions {
  readonly registry: Registry;
  /** Where tags, untagged revisions, push times and manifests come from; without it only tagged content is seen. */
  readonly storage?: StorageLister;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly progress?: Progress;
  readonly clock: { now(): Date };
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/**
 * Repositories scanned at once. Each holds its manifests as they arrive until its model is built; the request
 * limit (`concurrency`) is what keeps the registry busy, so more at once only holds more in memory.
 */
const REPOSITORIES_AT_ONCE = 16;

export interface Scanned {
  readonly inventory: Inventory;
  /** Every repository the catalog lists, selected or not. */
  readonly catalog: readonly string[];
}

/**
 * Builds the inventory. Without storage, every selected repository's tags and manifests come through the API.
 * With storage that agrees with the API, tags, untagged revisions and push times come from storage, and so do
 * the manifests themselves when it can read blobs: then the API answers only the catalog and the agreement
 * check. Storage that disagrees is refused with a StorageRootError. A repository that fails is recorded with
 * its error and the scan goes on.
 */
export async function scan(options: ScanOptions): Promise<Scanned> {
  const { registry } = options;
  const limit = createLimit(registry.concurrency);
  const scannedAt = options.clock.now().toISOString();
  // Storage first: a wrong storage root is bad input, reported before any request goes out.
  const listed = options.storage ? await options.storage.list() : undefined;
  const catalog = await registry.listRepositories();
  const { stored, all } =
    options.storage && listed
      ? await agreedStorage(options.storage, { stored: listed, all: catalog }, options, limit)
      : { stored: listed, all: catalog };
  const selected = all.filter(repositoryFilter(options.include ?? [], options.exclude ?? []));
  const configs = new Map<Digest, Promise<string | undefined>>();
  // One copy of each digest, media type and blob reference for the whole inventory.
  const interner = new Interner();
  const repositoriesAtOnce = createLimit(REPOSITORIES_AT_ONCE);
  let done = 0;
  const repositories = await Promise.all(
    selected.map((name) =>
      repositoriesAtOnce(async () => {
        const repository = await scanRepository(name, {
          registry,
          limit,
          stored: stored?.get(name),
          storageVisible: stored !== undefined,
          storage: options.storage,
          configs,
          interner,
        });
        done += 1;
        options.progress?.update(`scanned ${done}/${selected.length} repositories`);
        return repository;
      }),
    ),
  );
  const storedBlobs = options.storage?.listBlobs ? await options.storage.listBlobs() : undefined;
  const inventory: Inventory = {
    registry: registry.origin,
    scannedAt,
    catalogComplete: selected.length === all.length,
    repositories,
    ...(storedBlobs
      ? { storedBlobs: [...storedBlobs].map(([digest, size]) => interner.blob({ digest, size })) }
      : {}),
  };
  return { inventory, catalog: all };
}

interface Reads {
  readonly stored: Map<string, StoredRepository>;
  readonly all: string[];
}

/**
 * The storage listing, once a sample of it agrees with the API; refuses storage that belongs to another
 * registry or is a stale copy. A push or a delete between the two reads also looks like a disagreement, so
 * both are read again, once, and only what disagrees both times counts.
 */
async function agreedStorage(
  storage: StorageLister,
  first: Reads,
  options: ScanOptions,
  limit: Limit,
): Promise<Reads> {
  const found = await disagreements(first, options.registry, limit);
  if (found.length === 0) return first;
  const again: Reads = { stored: await storage.list(), all: await options.registry.listRepositories() };
  const before = new Set(found.map(disagreementKey));
  const confirmed = (await disagreements(again, options.registry, limit)).filter((d) =>
    before.has(disagreementKey(d)),
  );
  if (confirmed.length === 0) return again;
  throw new StorageRootError(
    mismatchMessage({
      storage: storage.label ?? 'the storage',
      registryUrl: options.registry.origin,
      disagreements: confirmed,
      fix: storage.mismatchFix ?? 'Give the storage of this registry.',
    }),
  );
}

/**
 * Compares the two lists of repositories, then the tags of a few repositories both sides have and the digests
 * of a few of those tags. A repository the API cannot read tells nothing about whose storage this is.
 */
async function disagreements(reads: Reads, registry: Registry, limit: Limit): Promise<Disagreement[]> {
  const sampled = await Promise.all(
    sampleRepositories(reads.stored, reads.all).map(async (name) => {
      const storedTags = reads.stored.get(name)?.tags ?? [];
      try {
        const registryTags = await limit(() => registry.listTags(name));
        const digests = await Promise.all(
          tagsToResolve(storedTags, registryTags).map(async (tag) =>
            compareDigest(name, tag, await limit(() => registry.resolveManifest(name, tag.name))),
          ),
        );
        return [
          ...compareTagLists(name, storedTags, registryTags),
          ...digests.filter((d): d is Disagreement => d !== undefined),
        ];
      } catch {
        return [];
      }
    }),
  );
  return [...compareCatalogs(reads.stored.keys(), reads.all), ...sampled.flat()];
}

interface RepositoryContext {
  readonly registry: Registry;
  readonly limit: Limit;
  readonly stored: StoredRepository | undefined;
  readonly storageVisible: boolean;
  readonly storage: StorageLister | undefined;
  readonly configs: Map<Digest, Promise<string | undefined>>;
  readonly interner: Interner;
}

/** Where one repository's tags and manifests are read: the registry's API, or storage when it is visible. */
interface RepositorySource {
  /** Calls `found` for each tag, with the manifest when reading the tag gave it. */
  eachTag(found: (tag: Tag, manifest?: Manifest) => Promise<void>): Promise<void>;
  /** The repository's manifest by that digest, parsed and checked; undefined when it has none. */
  manifest(digest: Digest): Promise<Manifest | undefined>;
}

/** One request per tag and per manifest; push times from the storage listing where it agrees. */
function apiSource(name: string, context: RepositoryContext): RepositorySource {
  const { registry, limit, stored } = context;
  const storedTags = new Map((stored?.tags ?? []).map((tag) => [tag.name, tag]));
  return {
    async eachTag(found) {
      const tagNames = await limit(() => registry.listTags(name));
      await Promise.all(
        tagNames.map(async (tagName) => {
          const fetched = await limit(() => registry.getManifest(name, tagName));
          if (!fetched) return;
          const storedTag = storedTags.get(tagName);
          await found(
            {
              name: tagName,
              digest: fetched.digest,
              ...(storedTag && storedTag.digest === fetched.digest ? { pushedAt: storedTag.pushedAt } : {}),
            },
            parseManifest(fetched.digest, fetched.mediaType, fetched.body),
          );
        }),
      );
    },
    async manifest(digest) {
      const fetched = await limit(() => registry.getManifest(name, digest));
      return fetched && parseManifest(digest, fetched.mediaType, fetched.body);
    },
  };
}

/**
 * Tags and revisions as storage lists them, manifests read from its blobs. As through the API, a manifest is
 * the repository's only when the repository links it as a revision.
 */
function storageSource(
  stored: StoredRepository,
  readManifest: (digest: Digest) => Promise<Manifest | undefined>,
): RepositorySource {
  const revisions = new Set(stored.revisions.map((revision) => revision.digest));
  return {
    async eachTag(found) {
      await Promise.all(stored.tags.map((tag) => found(tag)));
    },
    manifest: (digest) => (revisions.has(digest) ? readManifest(digest) : Promise.resolve(undefined)),
  };
}

function sourceFor(name: string, context: RepositoryContext): RepositorySource {
  const { stored, storage } = context;
  return stored && storage?.readManifest
    ? storageSource(stored, storage.readManifest.bind(storage))
    : apiSource(name, context);
}

async function scanRepository(name: string, context: RepositoryContext): Promise<Repository> {
  const { stored } = context;
  const tags: Tag[] = [];
  const manifests = new Map<Digest, Manifest>();
  try {
    const source = sourceFor(name, context);
    const pushedAt = new Map(
      (stored?.revisions ?? []).map((revision) => [revision.digest, revision.pushedAt]),
    );
    const pending = new Map<Digest, Promise<void>>();

    const load = (digest: Digest, known?: Manifest): Promise<void> => {
      const existing = pending.get(digest);
      if (existing) return existing;
      const work = (async () => {
        const parsed = known ?? (await source.manifest(digest));
        if (!parsed) return;
        const pushed = pushedAt.get(digest);
        const created =
          pushed === undefined && parsed.config && IMAGE_CONFIG_TYPES.has(parsed.config.mediaType)
            ? await configCreated(name, parsed.config.digest, context)
            : undefined;
        manifests.set(
          digest,
          context.interner.manifest({
            ...parsed,
            ...(pushed !== undefined ? { pushedAt: pushed } : {}),
            ...(created !== undefined ? { created } : {}),
          }),
        );
        // Children and subjects belong to the same repository; a missing subject is checked, not assumed gone.
        await Promise.all([
          ...parsed.children.map((child) => load(child.digest)),
          ...(parsed.subject ? [load(parsed.subject)] : []),
        ]);
      })();
      pending.set(digest, work);
      return work;
    };

    await source.eachTag(async (tag, manifest) => {
      tags.push(context.interner.tag(tag));
      await load(tag.digest, manifest);
    });
    await Promise.all((stored?.revisions ?? []).map((revision) => load(revision.digest)));
    await Promise.all(pending.values());
    const found = tags.filter((tag) => manifests.has(tag.digest));
    // Images pushed at the same moment are ranked by build time: the configs of those, and only those.
    await Promise.all(
      buildTimesNeeded(found, [...manifests.values()]).map(async (digest) => {
        const manifest = manifests.get(digest);
        const config = manifest?.config;
        if (
          !manifest ||
          manifest.created !== undefined ||
          !config ||
          !IMAGE_CONFIG_TYPES.has(config.mediaType)
        )
          return;
        const created = await configCreated(name, config.digest, context);
        if (created !== undefined) manifests.set(digest, context.interner.manifest({ ...manifest, created }));
      }),
    );
    found.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    return {
      name,
      tags: found,
      manifests: [...manifests.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
      revisionsVisible: context.storageVisible,
    };
  } catch (error) {
    return { name, tags, manifests: [], revisionsVisible: false, error: errorMessage(error) };
  }
}

/**
 * An image config's build time: from storage when it holds the config (the host inventory carries the
 * configs it found in the manifests), else through the API.
 */
function configCreated(
  repository: string,
  digest: Digest,
  context: RepositoryContext,
): Promise<string | undefined> {
  let created = context.configs.get(digest);
  if (!created) {
    const { storage } = context;
    const throughApi = () =>
      context.limit(() => context.registry.getBlob(repository, digest, MAX_CONFIG_BYTES));
    const body = storage?.readBlob
      ? storage.readBlob(digest, MAX_CONFIG_BYTES).then((stored) => stored ?? throughApi())
      : throughApi();
    created = body.then(parseConfigCreated);
    context.configs.set(digest, created);
    created.catch(() => context.configs.delete(digest));
  }
  return created;
}
