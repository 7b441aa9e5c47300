import { describe, expect, it } from 'vitest';
import { blobsOf, reclaim } from '../../lambda/domain/reclaim.js';
import { image, index, inventory, repository } from './builders.js';

describe('reclaim', () => {
  it('counts each blob once, and never one that a kept manifest in any repository still references', () => {
    // Prepare: two deleted images share a layer; one also shares a layer with a kept image elsewhere.
    const a = image('a', { layers: ['common', 'only-a'] });
    const b = image('b', { layers: ['common', 'with-other'] });
    const other = image('other', { layers: ['with-other'] });
    const inv = inventory(repository('one', [], [a, b]), repository('two', [], [other]));

    // Act
    const result = reclaim(inv, new Map([['one', new Set([a.digest, b.digest])]]));

    // Assess: manifests (500 each), configs (100 each), `common` and `only-a` (1000 each); not `with-other`.
    expect(result).toEqual({ bytes: 2 * 500 + 2 * 100 + 2 * 1000, blobs: 6, exact: true, caveats: [] });
  });

  it('counts the children of a deleted index and keeps those a kept index lists', () => {
    const shared = image('shared');
    const own = image('own');
    const deleted = index('old', [shared, own]);
    const kept = index('new', [shared]);
    const inv = inventory(repository('multi', [], [deleted, kept, shared, own]));

    const result = reclaim(inv, new Map([['multi', new Set([deleted.digest, own.digest])]]));

    expect(result.bytes).toBe(deleted.size + own.size + 100 + 1000);
  });

  it('counts only the blobs storage holds, by their size there, when it was listed', () => {
    // Prepare: a stale image whose layer is gone from storage already, as in an image broken earlier
    const broken = image('broken', { layers: ['lost'] });
    const kept = image('kept');
    const listed = inventory(repository('app', [], [broken, kept]));
    const storedBlobs = [...listed.repositories.flatMap((r) => r.manifests).flatMap(blobsOf)].filter(
      (blob) => blob.digest !== broken.layers[0]?.digest,
    );

    // Act
    const result = reclaim({ ...listed, storedBlobs }, new Map([['app', new Set([broken.digest])]]));

    // Assess: the manifest and the config, not the lost layer
    expect(result).toMatchObject({ bytes: broken.size + 100, blobs: 2, exact: true, unreferencedBytes: 0 });
  });

  it('calls the figure an upper bound when it cannot see everything', () => {
    const m = image('m');
    const partial = { ...inventory(repository('a', [], [m], false)), catalogComplete: false };

    const result = reclaim(partial, new Map([['a', new Set([m.digest])]]));

    expect(result.exact).toBe(false);
    expect(result.caveats).toEqual([
      'only some repositories were scanned; blobs they share with the others may stay',
      'untagged revisions are not visible without the storage root; blobs they share may stay',
    ]);
  });
});
