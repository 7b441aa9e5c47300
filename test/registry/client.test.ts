import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidNameError } from '../../lambda/domain/names.js';
import { createRegistryClient, PROBE_DIGEST, type RegistryClient } from '../../lambda/registry/client.js';
import { BodyTooLargeError, DeleteRefusedError } from '../../lambda/registry/errors.js';
import {
  MediaTypes,
  pushImage,
  pushIndex,
  putManifest,
  registryRequest,
  sha256Digest,
} from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { skopeoPull, skopeoPushMultiArch } from '../support/skopeo.js';
import { manifestLinks } from '../support/storage.js';
import { recordingAgent } from './recording.js';

const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };

describe('RegistryClient against a real registry', () => {
  let reg: TestRegistry;
  let client: RegistryClient;

  beforeAll(async () => {
    reg = await startRegistry({ deleteEnabled: true });
    client = createRegistryClient({ url: reg.url, concurrency: 4 });
  });

  afterAll(async () => {
    await client?.close();
    await reg?.stop();
  });

  it('follows the catalog Link header page by page', async () => {
    // Prepare
    const repositories = ['pages/a', 'pages/b', 'pages/c', 'pages/d', 'pages/e'];
    for (const repository of repositories) await pushImage(reg, repository, 'v1');
    const recorder = recordingAgent();
    const paged = createRegistryClient({
      url: reg.url,
      concurrency: 2,
      pageSize: 2,
      dispatcher: recorder.dispatcher,
    });

    // Act
    const listed = await paged.listRepositories();
    await recorder.close();

    // Assess
    expect(listed.filter((name) => name.startsWith('pages/'))).toEqual(repositories);
    const catalogPaths = recorder.requests.map((request) => request.path);
    expect(catalogPaths[0]).toBe('/v2/_catalog?n=2');
    expect(catalogPaths).toHaveLength(3);
    expect(catalogPaths.slice(1).every((path) => /^\/v2\/_catalog\?.*last=/.test(path))).toBe(true);
  });

  it('lists tags, and an empty list when the registry answers "tags": null', async () => {
    // Prepare
    const kept = await pushImage(reg, 'tags/full', 'v1');
    await pushImage(reg, 'tags/full', 'v2');
    await putManifest(reg, 'tags/full', 'latest', kept.mediaType, kept.manifest);
    const only = await pushImage(reg, 'tags/emptied', 'only');
    expect(await client.deleteManifest('tags/emptied', only.digest as `sha256:${string}`)).toBe('deleted');
    const raw = await registryRequest(reg, 'GET', '/v2/tags/emptied/tags/list');

    // Act
    const full = await client.listTags('tags/full');
    const emptied = await client.listTags('tags/emptied');

    // Assess
    expect([...full].sort()).toEqual(['latest', 'v1', 'v2']);
    expect(JSON.parse(Buffer.from(raw.body).toString('utf8'))).toEqual({ name: 'tags/emptied', tags: null });
    expect(emptied).toEqual([]);
  });

  it('resolves a Docker manifest list to the list digest, not the amd64 child', async () => {
    // Prepare
    const amd64 = await pushImage(reg, 'multi/docker', undefined, { format: 'docker', platform: AMD64 });
    const arm64 = await pushImage(reg, 'multi/docker', undefined, { format: 'docker', platform: ARM64 });
    const list = await pushIndex(reg, 'multi/docker', 'v1', [amd64, arm64], { format: 'docker' });

    // Act
    const resolved = await client.resolveManifest('multi/docker', 'v1');
    const fetched = await client.getManifest('multi/docker', 'v1');
    const child = await client.getManifest('multi/docker', amd64.digest);

    // Assess
    expect(resolved).toBe(list.digest);
    expect(resolved).not.toBe(amd64.digest);
    expect(fetched?.digest).toBe(list.digest);
    expect(fetched?.mediaType).toBe(MediaTypes.dockerList);
    expect(Buffer.from(fetched?.body ?? []).equals(Buffer.from(list.manifest))).toBe(true);
    expect(child?.digest).toBe(amd64.digest);
    expect(child?.mediaType).toBe(MediaTypes.dockerManifest);
  });

  it('resolves an OCI index pushed by skopeo to the index digest', async () => {
    // Prepare
    const pushed = await skopeoPushMultiArch(reg, 'multi/oci', 'v1', [AMD64, ARM64]);

    // Act
    const resolved = await client.resolveManifest('multi/oci', 'v1');
    const fetched = await client.getManifest('multi/oci', 'v1');

    // Assess
    expect(resolved).toBe(pushed.digest);
    expect(pushed.children).not.toContain(resolved);
    expect(fetched?.digest).toBe(pushed.digest);
    expect(fetched?.mediaType).toBe(MediaTypes.ociIndex);
    expect(sha256Digest(fetched?.body ?? new Uint8Array())).toBe(pushed.digest);
  });

  it('answers undefined for a manifest or blob the registry does not have', async () => {
    // Prepare
    await pushImage(reg, 'missing/repo', 'v1');
    const absent = `sha256:${'0'.repeat(64)}` as const;

    // Act
    const byTag = await client.getManifest('missing/repo', 'nope');
    const headByTag = await client.resolveManifest('missing/repo', 'nope');
    const byDigest = await client.resolveManifest('missing/repo', absent);
    const blob = await client.statBlob('missing/repo', absent);

    // Assess
    expect(byTag).toBeUndefined();
    expect(headByTag).toBeUndefined();
    expect(byDigest).toBeUndefined();
    expect(blob).toBeUndefined();
  });

  it('reads an image config blob with its digest checked, and refuses one over the limit', async () => {
    // Prepare
    const image = await pushImage(reg, 'blobs/app', 'v1', { layerSizes: [4096] });
    const configDigest = image.config.digest as `sha256:${string}`;

    // Act
    const config = await client.getBlob('blobs/app', configDigest, 1024 * 1024);
    const size = await client.statBlob('blobs/app', configDigest);
    const layerSize = await client.statBlob('blobs/app', image.layers[0]?.digest as `sha256:${string}`);
    const tooSmall = client.getBlob('blobs/app', configDigest, 16);

    // Assess
    expect(sha256Digest(config)).toBe(configDigest);
    expect(JSON.parse(Buffer.from(config).toString('utf8')).architecture).toBe('amd64');
    expect(size).toBe(image.config.size);
    expect(layerSize).toBe(4096);
    await expect(tooSmall).rejects.toBeInstanceOf(BodyTooLargeError);
    await expect(tooSmall).rejects.toMatchObject({ code: 'RJ_BODY_TOO_LARGE' });
  });

  it('deletes a manifest (202), then reports it already gone (404), and the image no longer pulls', async () => {
    // Prepare
    const image = await pushImage(reg, 'delete/app', 'old');
    const kept = await pushImage(reg, 'delete/app', 'new');
    const digest = image.digest as `sha256:${string}`;

    // Act
    const first = await client.deleteManifest('delete/app', digest);
    const second = await client.deleteManifest('delete/app', digest);

    // Assess
    expect(first).toBe('deleted');
    expect(second).toBe('already-gone');
    expect(await client.resolveManifest('delete/app', digest)).toBeUndefined();
    expect(await client.listTags('delete/app')).toEqual(['new']);
    expect(await client.resolveManifest('delete/app', 'new')).toBe(kept.digest);
    expect((await skopeoPull(reg, 'delete/app', 'old')).ok).toBe(false);
    expect(await skopeoPull(reg, 'delete/app', 'new')).toEqual({ ok: true });
  });

  it('checks that deletes are allowed with a DELETE that removes nothing', async () => {
    // Prepare
    const image = await pushImage(reg, 'check/app', 'v1');
    await pushImage(reg, 'check/app', 'v2');
    const recorder = recordingAgent();
    const recorded = createRegistryClient({ url: reg.url, concurrency: 1, dispatcher: recorder.dispatcher });
    const before = await manifestLinks(reg);

    // Act
    const check = await recorded.checkDeletes('check/app');
    await recorder.close();

    // Assess
    expect(check).toEqual({ status: 'allowed', repository: 'check/app' });
    expect(recorder.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `DELETE /v2/check/app/manifests/${PROBE_DIGEST}`,
    ]);
    expect(await manifestLinks(reg)).toEqual(before);
    expect(await client.resolveManifest('check/app', 'v1')).toBe(image.digest);
    expect([...(await client.listTags('check/app'))].sort()).toEqual(['v1', 'v2']);
  });

  it('rejects hostile names and references before any request is sent', async () => {
    // Prepare
    const recorder = recordingAgent();
    const guarded = createRegistryClient({ url: reg.url, concurrency: 1, dispatcher: recorder.dispatcher });
    const attempts = [
      guarded.listTags('../../v2/_catalog'),
      guarded.listTags('Upper/Case'),
      guarded.getManifest('app', 'v1?x=1'),
      guarded.resolveManifest('app', '../latest'),
      guarded.getManifest('app%2F..', 'v1'),
      guarded.deleteManifest('app', 'latest' as `sha256:${string}`),
      guarded.deleteManifest('app', `sha256:${'A'.repeat(64)}` as `sha256:${string}`),
      guarded.getBlob('app', 'sha256:abc' as `sha256:${string}`, 10),
      guarded.statBlob('app\nX-Injected: 1', `sha256:${'0'.repeat(64)}`),
    ];

    // Act
    const results = await Promise.allSettled(attempts);
    await recorder.close();

    // Assess
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(InvalidNameError);
    }
    expect(recorder.requests).toEqual([]);
  });
});

describe('DELETE refused by the registry', () => {
  it('explains how to enable deletes when they are disabled (405 UNSUPPORTED)', async () => {
    // Prepare
    const reg = await startRegistry({ deleteEnabled: false });
    const client = createRegistryClient({ url: reg.url, concurrency: 1 });
    try {
      const image = await pushImage(reg, 'refused/app', 'v1');

      // Act
      const attempt = client.deleteManifest('refused/app', image.digest as `sha256:${string}`);

      // Assess
      await expect(attempt).rejects.toBeInstanceOf(DeleteRefusedError);
      await expect(attempt).rejects.toMatchObject({
        code: 'RJ_DELETE_DISABLED',
        message: expect.stringContaining('REGISTRY_STORAGE_DELETE_ENABLED=true'),
      });
      expect(await client.checkDeletes('refused/app')).toEqual({
        status: 'disabled',
        repository: 'refused/app',
        problem: 'deletes are disabled on the registry (DELETE in refused/app answered 405 UNSUPPORTED)',
        fix: 'Set REGISTRY_STORAGE_DELETE_ENABLED=true (storage.delete.enabled: true in config.yml) and restart the registry.',
      });
      expect(await client.resolveManifest('refused/app', 'v1')).toBe(image.digest);
    } finally {
      await client.close();
      await reg.stop();
    }
  });

  it('explains read-only maintenance mode (405 plain text)', async () => {
    // Prepare
    const reg = await startRegistry({ deleteEnabled: true });
    const client = createRegistryClient({ url: reg.url, concurrency: 1 });
    try {
      const image = await pushImage(reg, 'readonly/app', 'v1');
      await reg.restart({ readOnly: true });

      // Act
      const attempt = client.deleteManifest('readonly/app', image.digest as `sha256:${string}`);

      // Assess
      await expect(attempt).rejects.toBeInstanceOf(DeleteRefusedError);
      await expect(attempt).rejects.toMatchObject({
        code: 'RJ_READ_ONLY',
        message: expect.stringContaining('read-only maintenance mode'),
      });
      expect(await client.checkDeletes('readonly/app')).toEqual({
        status: 'read-only',
        repository: 'readonly/app',
        problem: 'the registry is in read-only maintenance mode (DELETE in readonly/app answered 405)',
        fix: expect.stringMatching(/^Take it out of read-only mode .* and restart the registry\.$/),
      });
      expect(await client.resolveManifest('readonly/app', 'v1')).toBe(image.digest);
    } finally {
      await client.close();
      await reg.stop();
    }
  });
});
