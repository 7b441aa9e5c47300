import { describe, expect, it } from 'vitest';
import type { Digest } from '../../lambda/domain/names.js';
import {
  AGREEMENT_SAMPLE,
  compareCatalogs,
  compareDigest,
  compareTagLists,
  type Disagreement,
  mismatchMessage,
  type StorageRepository,
  sampleRepositories,
  spread,
  tagsToResolve,
} from '../../lambda/domain/storage-agreement.js';

const digest = (n: number): Digest => `sha256:${String(n).padStart(8, '0').repeat(8)}`;

function repositories(count: number, tags: number): Map<string, StorageRepository> {
  const found = new Map<string, StorageRepository>();
  for (let r = 0; r < count; r++) {
    found.set(`team-${String(r).padStart(3, '0')}/app`, {
      tags: Array.from({ length: tags }, (_, t) => ({
        name: `v${t}`,
        digest: digest(r * 1000 + t),
        pushedAt: new Date(Date.UTC(2026, 0, 1 + t)).toISOString(),
      })),
    });
  }
  return found;
}

describe('the storage sample', () => {
  it('takes a bounded, repeatable sample spread over the whole registry', () => {
    const stored = repositories(500, 40);
    const catalog = [...stored.keys()].reverse();

    const first = sampleRepositories(stored, catalog);
    const second = sampleRepositories(new Map([...stored].reverse()), [...catalog].reverse());

    expect(first).toEqual(second);
    expect(first).toHaveLength(AGREEMENT_SAMPLE.repositories);
    expect(first[0]).toBe('team-000/app');
    expect(first.at(-1)).toBe('team-499/app');
    const tags = tagsToResolve(
      stored.get('team-000/app')?.tags ?? [],
      Array.from({ length: 40 }, (_, t) => `v${t}`),
    );
    expect(tags).toHaveLength(AGREEMENT_SAMPLE.tagsPerRepository);
    expect(tags[0]?.name).toBe('v39');
  });

  it('prefers repositories with tags, and resolves only tags both sides list', () => {
    const stored = new Map<string, StorageRepository>([
      ['empty', { tags: [] }],
      [
        'tagged',
        {
          tags: [
            { name: 'a', digest: digest(1) },
            { name: 'gone', digest: digest(2) },
          ],
        },
      ],
      ['only-in-storage', { tags: [{ name: 'a', digest: digest(3) }] }],
    ]);

    expect(
      sampleRepositories(stored, ['empty', 'tagged'], { repositories: 1, tagsPerRepository: 3 }),
    ).toEqual(['tagged']);
    expect(tagsToResolve(stored.get('tagged')?.tags ?? [], ['a', 'new']).map((t) => t.name)).toEqual(['a']);
  });

  it('spreads a pick evenly, first and last included', () => {
    expect(spread([1, 2, 3, 4, 5, 6, 7, 8, 9], 3)).toEqual([1, 5, 9]);
    expect(spread([1, 2], 5)).toEqual([1, 2]);
    expect(spread([1, 2, 3], 1)).toEqual([1]);
  });
});

describe('the comparison', () => {
  it('finds repositories and tags only one side has, and digests that differ', () => {
    expect(compareCatalogs(['a', 'b'], ['b', 'c'])).toEqual([
      { kind: 'repository-only-in-registry', repository: 'c' },
      { kind: 'repository-only-in-storage', repository: 'a' },
    ]);
    expect(compareTagLists('app', [{ name: 'v1', digest: digest(1) }], ['v2'])).toEqual([
      { kind: 'tag-only-in-registry', repository: 'app', tag: 'v2' },
      { kind: 'tag-only-in-storage', repository: 'app', tag: 'v1' },
    ]);
    expect(compareDigest('app', { name: 'v1', digest: digest(1) }, digest(2))).toEqual({
      kind: 'tag-digest',
      repository: 'app',
      tag: 'v1',
      stored: digest(1),
      registry: digest(2),
    });
    expect(compareDigest('app', { name: 'v1', digest: digest(1) }, digest(1))).toBeUndefined();
    expect(compareDigest('app', { name: 'v1', digest: digest(1) }, undefined)).toBeUndefined();
  });

  it('says it in a few short lines, with up to three examples of different kinds', () => {
    const disagreements: Disagreement[] = [
      ...Array.from({ length: 20 }, (_, n) => ({
        kind: 'repository-only-in-registry' as const,
        repository: `repo-${n}`,
      })),
      { kind: 'tag-digest', repository: 'web', tag: 'latest', stored: digest(1), registry: digest(2) },
      { kind: 'tag-only-in-storage', repository: 'web', tag: 'old' },
    ];

    const message = mismatchMessage({
      storage: '--storage-root /srv/other',
      registryUrl: 'http://127.0.0.1:5000',
      disagreements,
      fix: 'Give the storage root of this registry.',
    });

    expect(message.split('\n')).toEqual([
      '--storage-root /srv/other does not match http://127.0.0.1:5000:',
      '  the storage belongs to another registry or is a stale copy.',
      '  22 disagreements, among them:',
      '    web:latest is 000000010000 in storage, 000000020000 in the registry',
      '    repository repo-0 is in the registry, not in storage',
      '    web:old is in storage, not in the registry',
      '  Give the storage root of this registry.',
    ]);
  });
});
