import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../lambda/domain/plan.js';
import { buildPolicy } from '../../lambda/domain/policy.js';
import type { StorageLister } from '../../lambda/ports.js';
import { FilesystemStorage } from '../../lambda/storage/filesystem.js';
import { encodeJson } from '../support/blobs.js';
import { pushImage } from '../support/images.js';
import { type MixedContent, pushMixedContent } from '../support/mixed-registry.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import {
  contentReads,
  type RecordedScan,
  repositoryOf as repository,
  scanWith,
} from '../support/scanning.js';
import { blobDataPath } from '../support/storage.js';

const POLICY = buildPolicy(undefined, { keepLast: 1, untaggedGrace: '1h' });

/** The storage listing alone: tags, revisions and push times, every manifest still read through the API. */
function listingOnly(storage: FilesystemStorage): StorageLister {
  return { list: () => storage.list(), listBlobs: () => storage.listBlobs() };
}

describe('a scan with the storage root visible', () => {
  let reg: TestRegistry;
  let content: MixedContent;
  let direct: RecordedScan;
  let throughApi: RecordedScan;
  const now = new Date();

  beforeAll(async () => {
    reg = await startRegistry();
    content = await pushMixedContent(reg);
    const storage = new FilesystemStorage(reg.root);
    direct = await scanWith(reg, storage, now);
    throughApi = await scanWith(reg, listingOnly(storage), now);
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('reads every manifest and config from storage: no manifest or blob request', () => {
    const manifests = throughApi.scanned.inventory.repositories.reduce((n, r) => n + r.manifests.length, 0);

    expect(contentReads(direct.requests)).toEqual([]);
    expect(
      contentReads(throughApi.requests).filter((read) => read.includes(' manifests ')).length,
    ).toBeGreaterThanOrEqual(manifests);
  });

  it('finds the same inventory as the API, to every media type, child, subject, blob size and time', () => {
    const { inventory } = direct.scanned;

    expect(inventory).toEqual(throughApi.scanned.inventory);
    expect(inventory.repositories.every((r) => r.error === undefined)).toBe(true);
    const multi = repository(inventory, 'multi/base');
    const index = multi?.manifests.find((m) => m.digest === content.skopeoIndex.digest);
    expect(index?.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index?.children.map((c) => [c.digest, c.platform])).toEqual([
      [content.skopeoIndex.children[0], 'linux/amd64'],
      [content.skopeoIndex.children[1], 'linux/arm64'],
    ]);
    expect(multi?.manifests.find((m) => m.digest === content.dockerList.digest)?.children[1]?.platform).toBe(
      'linux/arm/v7',
    );
    const app = repository(inventory, 'web/app');
    expect(app?.manifests.find((m) => m.digest === content.referrer.digest)?.subject).toBe(
      content.images[2]?.digest,
    );
    expect(app?.manifests.find((m) => m.digest === content.untagged.digest)?.pushedAt).toBeDefined();
    const pretty = repository(inventory, 'web/pretty')?.manifests.find((m) => m.digest === content.pretty);
    expect(pretty?.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(pretty?.layers).toHaveLength(1);
    const tied = repository(inventory, 'ci/job')?.manifests;
    expect(tied?.map((m) => m.created !== undefined)).toEqual([true, true]);
  });

  it('plans the same deletions and keeps, for the same reasons', () => {
    const fromStorage = plan(direct.scanned.inventory, POLICY, now);
    const fromApi = plan(throughApi.scanned.inventory, POLICY, now);

    expect(fromStorage).toEqual(fromApi);
    const app = fromStorage.repositories.find((r) => r.name === 'web/app');
    expect(app?.tags.filter((t) => t.decision === 'delete').map((t) => t.tag)).toEqual(['1.0', '1.1']);
    expect(
      app?.manifests
        .filter((m) => m.decision === 'keep')
        .map((m) => m.digest)
        .sort(),
    ).toEqual(
      [content.images[2], content.referrer, ...content.signatures].map((image) => image?.digest).sort(),
    );
    const job = fromStorage.repositories.find((r) => r.name === 'ci/job');
    expect(job?.tags.map((t) => [t.tag, t.decision])).toEqual([
      ['a', 'delete'],
      ['b', 'keep'],
    ]);
    expect(fromStorage.reclaim.exact).toBe(true);
  });
});

describe('a manifest blob in storage that is not what its digest names', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry();
    const damaged = await pushImage(reg, 'damaged', 'v1', {});
    await pushImage(reg, 'intact', 'v1', {});
    await writeFile(blobDataPath(reg, damaged.digest), encodeJson({ schemaVersion: 2, layers: [] }));
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('fails that repository, as a digest mismatch through the API does, and the others are scanned', async () => {
    const storage = new FilesystemStorage(reg.root);

    const direct = await scanWith(reg, storage, new Date());
    const throughApi = await scanWith(reg, listingOnly(storage), new Date());

    for (const { inventory } of [direct.scanned, throughApi.scanned]) {
      expect(repository(inventory, 'intact')?.error).toBeUndefined();
      expect(repository(inventory, 'intact')?.tags.map((t) => t.name)).toEqual(['v1']);
    }
    expect(repository(direct.scanned.inventory, 'damaged')?.error).toMatch(
      /^manifest sha256:[a-f0-9]{64} in storage does not match its digest: the content hashes to sha256:[a-f0-9]{64}$/,
    );
    expect(repository(throughApi.scanned.inventory, 'damaged')?.error).toMatch(/hashes to sha256:/);
  });
});
