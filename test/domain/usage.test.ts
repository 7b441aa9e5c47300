import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Inventory, Repository } from '../../lambda/domain/inventory.js';
import type { Digest } from '../../lambda/domain/names.js';
import { blobsOf, reclaim } from '../../lambda/domain/reclaim.js';
import { usage } from '../../lambda/domain/usage.js';
import { inventories } from './arbitraries.js';
import { digestOf, image, index, inventory, repository, tag } from './builders.js';

/** Manifests no tag leads to, found by a fixpoint over children and subjects. */
function untaggedOf(repo: Repository): Set<Digest> {
  const reached = new Set<Digest>(repo.tags.map((t) => t.digest));
  for (let grew = true; grew; ) {
    grew = false;
    for (const manifest of repo.manifests) {
      const reachable =
        reached.has(manifest.digest) ||
        (manifest.subject !== undefined && reached.has(manifest.subject)) ||
        repo.manifests.some(
          (parent) => reached.has(parent.digest) && parent.children.some((c) => c.digest === manifest.digest),
        );
      if (reachable && !reached.has(manifest.digest)) {
        reached.add(manifest.digest);
        grew = true;
      }
    }
  }
  return new Set(repo.manifests.map((m) => m.digest).filter((digest) => !reached.has(digest)));
}

const figuresOf = (inv: Inventory, name: string) => usage(inv).repositories.find((r) => r.name === name);

describe('usage', () => {
  it('splits each repository into exclusive and shared bytes, counting every blob once', () => {
    // Prepare: web and api share a base layer; web's two images share their own layer too.
    const v1 = image('v1', { layers: ['base', 'web-common', 'v1-only'] });
    const v2 = image('v2', { layers: ['base', 'web-common', 'v2-only'] });
    const api = image('api', { layers: ['base', 'api-only'] });
    const inv = inventory(
      repository('web', [tag('v1', v1), tag('v2', v2)], [v1, v2]),
      repository('api', [tag('1.0', api)], [api]),
    );

    // Act
    const result = usage(inv);

    // Assess: manifests 500, configs 100, layers 1000 each
    expect(result.repositories).toEqual([
      { name: 'web', totalBytes: 5200, exclusiveBytes: 4200, sharedBytes: 1000, untaggedBytes: 0 },
      { name: 'api', totalBytes: 2600, exclusiveBytes: 1600, sharedBytes: 1000, untaggedBytes: 0 },
    ]);
    expect(result.referencedBytes).toBe(6800);
    expect(result).toMatchObject({ registryBytes: null, unreferencedBytes: null, exact: true, caveats: [] });
  });

  it('counts as untagged only what no manifest a tag leads to holds: children and signatures of tagged images are not', () => {
    // Prepare: a tagged index over two children, a signature of it by subject, and an untagged old build
    const amd = image('amd', { layers: ['base', 'amd-only'] });
    const arm = image('arm', { layers: ['base', 'arm-only'] });
    const multi = index('multi', [amd, arm]);
    const signature = image('sig', { subject: multi.digest });
    const old = image('old', { layers: ['base', 'old-only'] });
    const orphanChild = image('orphan-child', { layers: ['orphan-only'] });
    const oldIndex = index('old-index', [orphanChild]);
    const inv = inventory(
      repository('app', [tag('latest', multi)], [amd, arm, multi, signature, old, orphanChild, oldIndex]),
    );

    const app = figuresOf(inv, 'app');

    // Assess: old (500 + 100 + 1000, not base), the old index (300) and its child (500 + 100 + 1000)
    expect(app?.untaggedBytes).toBe(1600 + 300 + 1600);
  });

  it('takes sizes from storage when it was listed, and tells the registry total and what no manifest references', () => {
    const kept = image('kept', { layers: ['lost', 'here'] });
    const listed = inventory(repository('app', [tag('v1', kept)], [kept]));
    const storedBlobs = [
      ...blobsOf(kept)
        .filter((blob) => blob.digest !== digestOf('lost'))
        .map((blob) => ({ digest: blob.digest, size: blob.size * 2 })),
      { digest: digestOf('left behind'), size: 4096 },
    ];

    const result = usage({ ...listed, storedBlobs });

    expect(result.repositories[0]).toMatchObject({
      totalBytes: 2 * (500 + 100 + 1000),
      exclusiveBytes: 3200,
    });
    expect(result).toMatchObject({
      registryBytes: 3200 + 4096,
      referencedBytes: 3200,
      unreferencedBytes: 4096,
    });
  });

  it('calls exclusive bytes upper bounds when only some repositories were scanned', () => {
    const m = image('m');
    const partial = { ...inventory(repository('a', [tag('x', m)], [m])), catalogComplete: false };

    const result = usage(partial);

    expect(result.exact).toBe(false);
    expect(result.caveats).toEqual([
      'only some repositories were scanned; blobs they share with the others may stay',
    ]);
  });

  it('lists the largest exclusive figure first, then by name', () => {
    const big = image('big', { layerSize: 5000 });
    const small = image('small');
    const same = image('same');
    const inv = inventory(
      repository('c-small', [tag('a', small)], [small]),
      repository('a-same', [tag('a', same)], [same]),
      repository('b-big', [tag('a', big)], [big]),
      repository('d-empty', [], []),
    );

    expect(usage(inv).repositories.map((r) => r.name)).toEqual(['b-big', 'a-same', 'c-small', 'd-empty']);
  });

  it('agrees with reclaim for any inventory: exclusive is what emptying the repository frees, untagged what deleting its untagged manifests frees', () => {
    fc.assert(
      fc.property(inventories, (inv) => {
        const result = usage(inv);
        expect(result.repositories.map((r) => r.name).sort()).toEqual(
          inv.repositories
            .filter((r) => r.error === undefined)
            .map((r) => r.name)
            .sort(),
        );
        for (const repo of inv.repositories.filter((r) => r.error === undefined)) {
          const figures = result.repositories.find((r) => r.name === repo.name);
          const emptied = reclaim(inv, new Map([[repo.name, new Set(repo.manifests.map((m) => m.digest))]]));
          const untagged = reclaim(inv, new Map([[repo.name, untaggedOf(repo)]]));
          expect(figures?.exclusiveBytes).toBe(emptied.bytes);
          expect(figures?.untaggedBytes).toBe(untagged.bytes);
          expect(figures?.sharedBytes).toBe((figures?.totalBytes ?? 0) - (figures?.exclusiveBytes ?? 0));
        }
        expect(result.unreferencedBytes).toBe(reclaim(inv, new Map()).unreferencedBytes ?? null);
      }),
      { numRuns: 250 },
    );
  });
});
