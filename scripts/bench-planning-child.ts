// Run in a fresh process by bench-planning.ts: builds a synthetic inventory of the given number of tags the way
// the scan builds one (manifest bodies parsed into the model), plans it, and prints one JSON line of
// measurements. Memory is the process's own: its peak RSS says what a run of that size needs.
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Interner } from '../lambda/domain/interning.js';
import type { Inventory, Repository, Tag } from '../lambda/domain/inventory.js';
import { parseManifest } from '../lambda/domain/manifest.js';
import type { Digest } from '../lambda/domain/names.js';
import { plan } from '../lambda/domain/plan.js';
import { buildPolicy } from '../lambda/domain/policy.js';

export interface PlanningSample {
  readonly tags: number;
  readonly manifests: number;
  readonly repositories: number;
  /** RSS once the modules are loaded, before the inventory is built. */
  readonly baselineRss: number;
  /** Heap used by the inventory alone, after a full collection. */
  readonly inventoryHeap: number;
  readonly planMs: number;
  /** Heap used by the inventory and its plan, after a full collection. */
  readonly retainedHeap: number;
  /** The process's peak RSS over building and planning. */
  readonly peakRss: number;
  readonly manifestsDeleted: number;
}

export const TAGS_PER_REPOSITORY = 100;
export const MANIFESTS_PER_REPOSITORY = 300;

const DAY = 86_400_000;
const TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  cosignConfig: 'application/vnd.dev.cosign.artifact.sig.v1+json',
  cosignPayload: 'application/vnd.dev.cosign.simplesigning.v1+json',
} as const;

const hex = (seed: string) => createHash('sha256').update(seed).digest('hex');
const digestOf = (seed: string): Digest => `sha256:${hex(seed)}`;

interface Pushed {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
}

/**
 * One repository of 100 tags and 300 manifests, as a registry that has run for a while holds them: 50
 * releases (`1.0.x`, the newest 24 also tagged `sha-…`, the newest `latest`), cosign signatures of the 5
 * newest, 20 two-platform indexes and their children, and 185 untagged revisions (15 of them old indexes with
 * their children) left by tags pushed again. Images are three layers of one of 20 base images every
 * repository shares, one of 5 layers the repository's images share, and one of their own.
 */
function syntheticRepository(r: number, now: number, interner: Interner): Repository {
  const name = `team-${r % 50}/service-${r}`;
  const at = (ago: number) => new Date(now - ago).toISOString();
  const manifests: Repository['manifests'][number][] = [];
  const tags: Tag[] = [];
  const push = (body: unknown, pushedAgo: number): Pushed => {
    const bytes = Buffer.from(JSON.stringify(body));
    const digest: Digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const parsed = parseManifest(digest, '', bytes);
    manifests.push(interner.manifest({ ...parsed, pushedAt: at(pushedAgo) }));
    return { digest, size: bytes.byteLength, mediaType: parsed.mediaType };
  };
  const layer = (seed: string, size: number) => ({
    mediaType: TYPES.dockerLayer,
    size,
    digest: digestOf(seed),
  });
  const image = (seed: string, pushedAgo: number): Pushed => {
    const base = (r * 7 + seed.length) % 20;
    return push(
      {
        schemaVersion: 2,
        mediaType: TYPES.dockerManifest,
        config: {
          mediaType: TYPES.dockerConfig,
          size: 4_000 + seed.length,
          digest: digestOf(`config:${r}:${seed}`),
        },
        layers: [
          layer(`base:${base}:0`, 28_000_000 + base * 1_000),
          layer(`base:${base}:1`, 9_000_000 + base * 1_000),
          layer(`base:${base}:2`, 3_000_000 + base * 1_000),
          layer(`shared:${r}:${seed.length % 5}`, 8_000_000),
          layer(`own:${r}:${seed}`, 500_000 + (seed.length % 7) * 100_000),
        ],
      },
      pushedAgo,
    );
  };
  const multiArch = (seed: string, pushedAgo: number): Pushed => {
    const children = ['amd64', 'arm64'].map((architecture) => ({
      ...image(`${seed}:${architecture}`, pushedAgo),
      platform: { os: 'linux', architecture },
    }));
    return push({ schemaVersion: 2, mediaType: TYPES.ociIndex, manifests: children }, pushedAgo);
  };
  const tag = (tagName: string, pushed: Pushed, pushedAgo: number) =>
    tags.push(interner.tag({ name: tagName, digest: pushed.digest, pushedAt: at(pushedAgo) }));

  const releases: Pushed[] = [];
  for (let i = 0; i < 50; i++) {
    const pushedAgo = (50 - i) * 2 * DAY + (r % 13) * 60_000;
    const release = image(`release:${i}`, pushedAgo);
    releases.push(release);
    tag(`1.0.${i}`, release, pushedAgo);
    if (i >= 26) tag(`sha-${hex(`${r}:${i}`).slice(0, 8)}`, release, pushedAgo);
    if (i === 49) tag('latest', release, pushedAgo);
  }
  for (const subject of releases.slice(-5)) {
    const signature = push(
      {
        schemaVersion: 2,
        mediaType: TYPES.ociManifest,
        config: { mediaType: TYPES.cosignConfig, size: 250, digest: digestOf(`sigconfig:${subject.digest}`) },
        layers: [
          { mediaType: TYPES.cosignPayload, size: 300, digest: digestOf(`sigpayload:${subject.digest}`) },
        ],
      },
      2 * DAY,
    );
    tag(`${subject.digest.replace(':', '-')}.sig`, signature, 2 * DAY);
  }
  for (let j = 0; j < 20; j++) {
    const pushedAgo = (20 - j) * 4 * DAY;
    tag(`multi-${j}`, multiArch(`multi:${j}`, pushedAgo), pushedAgo);
  }
  for (let j = 0; j < 15; j++) multiArch(`old-multi:${j}`, (j + 90) * DAY);
  for (let u = 0; u < 140; u++) image(`untagged:${u}`, u < 6 ? (u + 1) * 3_600_000 : u * DAY);

  tags.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  manifests.sort((a, b) => a.digest.localeCompare(b.digest));
  return { name, tags, manifests, revisionsVisible: true };
}

export function syntheticInventory(tags: number, now: number): Inventory {
  const repositories = Math.ceil(tags / TAGS_PER_REPOSITORY);
  const interner = new Interner();
  return {
    registry: 'https://registry.example.com',
    scannedAt: new Date(now).toISOString(),
    catalogComplete: true,
    repositories: Array.from({ length: repositories }, (_, r) => syntheticRepository(r, now, interner)),
  };
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
}

function measure(tags: number): PlanningSample {
  const now = Date.now();
  collect();
  const baselineRss = process.memoryUsage.rss();
  const inventory = syntheticInventory(tags, now);
  collect();
  const inventoryHeap = process.memoryUsage().heapUsed;
  const policy = buildPolicy(undefined, { keepLast: 10, keepDays: 30, keepTags: ['^latest$'] });
  const startedAt = performance.now();
  const result = plan(inventory, policy, new Date(now));
  const planMs = performance.now() - startedAt;
  const peakRss = process.resourceUsage().maxRSS * 1024;
  collect();
  const retainedHeap = process.memoryUsage().heapUsed;
  let manifests = 0;
  let tagCount = 0;
  for (const repository of inventory.repositories) {
    manifests += repository.manifests.length;
    tagCount += repository.tags.length;
  }
  const decided = result.totals.manifestsKept + result.totals.manifestsDeleted;
  if (decided !== manifests) throw new Error(`plan decided ${decided} manifests of ${manifests}`);
  return {
    tags: tagCount,
    manifests,
    repositories: inventory.repositories.length,
    baselineRss,
    inventoryHeap,
    planMs,
    retainedHeap,
    peakRss,
    manifestsDeleted: result.totals.manifestsDeleted,
  };
}

const tags = Number(process.argv[2]);
if (!Number.isInteger(tags) || tags <= 0) {
  process.stderr.write('usage: bench-planning-child <tags>\n');
  process.exitCode = 2;
} else {
  process.stdout.write(`${JSON.stringify(measure(tags))}\n`);
}
