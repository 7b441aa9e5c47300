import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deleteManifest, pushImage, randomGzipBlob } from '../support/images.js';
import { skopeoPull } from '../support/skopeo.js';
import { type HostFixture, startHostFixture } from './host-fixture.js';

const RESTART_WARNING =
  'registry not restarted: until it restarts it may report collected blobs as present, and re-pushes of those layers will be silently broken';

describe("the registry's stale blob cache after a collection", () => {
  let host: HostFixture;
  const created = '2025-01-01T00:00:00Z';

  beforeEach(async () => {
    host = await startHostFixture();
  });

  afterEach(async () => {
    await host?.close();
  });

  it('is cleared by the restart: an image pushed again with the collected layers pulls completely', async () => {
    const layers = [randomGzipBlob(4096), randomGzipBlob(2048)];
    const first = await pushImage(host.reg, 'cache', 'x', { layers, created });
    await deleteManifest(host.reg, 'cache', first.digest);

    const collected = await host.run({ RJ_ACTION: 'collect' });
    const again = await pushImage(host.reg, 'cache', 'x', { layers, created });

    expect(collected.summary).toMatchObject({ status: 'done', restarted: true });
    expect(collected.summary?.blobsDeleted).toBe(4);
    expect(again.digest).toBe(first.digest);
    expect(await skopeoPull(host.reg, 'cache', 'x')).toEqual({ ok: true });
  });

  it('without the restart breaks such a re-push silently, which the summary warns about', async () => {
    const layers = [randomGzipBlob(4096)];
    const first = await pushImage(host.reg, 'cache', 'y', { layers, created });
    await deleteManifest(host.reg, 'cache', first.digest);

    const collected = await host.run({ RJ_ACTION: 'collect', RJ_RESTART: 'false' });
    await pushImage(host.reg, 'cache', 'y', { layers, created });

    expect(collected.exitCode).toBe(0);
    expect(collected.summary).toMatchObject({ status: 'done', restarted: false, warning: RESTART_WARNING });
    expect((await host.docker.calls()).filter((argv) => argv[0] === 'restart')).toEqual([]);
    expect((await skopeoPull(host.reg, 'cache', 'y')).ok).toBe(false);
  });
});

describe('a registry whose blob descriptor cache is in Redis', () => {
  let host: HostFixture | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  it('is collected, and the summary says the Redis cache must be flushed, which a restart does not do', async () => {
    // Prepare: the container is configured through its environment, as `docker run -e` does
    host = await startHostFixture({
      docker: { containerEnv: ['REGISTRY_STORAGE_CACHE_BLOBDESCRIPTOR=redis'] },
    });
    const image = await pushImage(host.reg, 'cache', 'z', {});
    await deleteManifest(host.reg, 'cache', image.digest);

    // Act
    const collected = await host.run({ RJ_ACTION: 'collect' });

    // Assess
    expect(collected.summary).toMatchObject({ status: 'done', restarted: true });
    expect(collected.summary?.warning).toBe(
      'the registry caches blob descriptors in Redis, which a restart does not clear: flush that Redis database after every garbage collection, or re-pushes of collected layers will be silently broken',
    );
  });

  it('is not suspected when the cache is in memory', async () => {
    host = await startHostFixture();
    const image = await pushImage(host.reg, 'cache', 'z', {});
    await deleteManifest(host.reg, 'cache', image.digest);

    const collected = await host.run({ RJ_ACTION: 'collect' });

    expect(collected.summary).toMatchObject({ status: 'done' });
    expect(collected.summary?.warning).toBeUndefined();
  });
});
