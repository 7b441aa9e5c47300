import fc from 'fast-check';
import type { Inventory, Manifest, Repository, Tag } from '../../lambda/domain/inventory.js';
import type { Digest } from '../../lambda/domain/names.js';
import { buildPolicy, type Policy, type RuleInput } from '../../lambda/domain/policy.js';
import { blobsOf } from '../../lambda/domain/reclaim.js';
import { daysAgo, digestOf, hoursAgo, image, index, inventory } from './builders.js';

/** Push and build times that make ties, grace periods and implausible clocks likely. */
const PUSH_TIMES = [
  hoursAgo(1),
  hoursAgo(30),
  daysAgo(2),
  daysAgo(5),
  daysAgo(5),
  daysAgo(40),
  daysAgo(40),
  daysAgo(400),
  '2099-01-01T00:00:00.000Z',
];
const BUILD_TIMES = [daysAgo(3), daysAgo(10), daysAgo(60), '1970-01-01T00:00:00.000Z'];
const TAG_NAMES = [
  'latest',
  'stable',
  'v1',
  'v1.1',
  'v2',
  'v10',
  'dev',
  'build-7',
  'rc-1',
  'rc-2',
  'pr-7',
  'rc-3-pr',
];
const REPOSITORY_NAMES = ['web/app', 'web/api', 'base', 'team/x/svc', 'tools'];
const REFERRER_KINDS = ['sig', 'att', 'sbom', 'fallback'] as const;
const SIGNATURE_CONFIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';

const maybe = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 3 });

interface ImageSpec {
  readonly seed: number;
  readonly layers: readonly number[];
  readonly pushedAt?: string;
  readonly created?: string;
}

interface RepositorySpec {
  readonly images: readonly ImageSpec[];
  readonly indexes: readonly { readonly children: readonly number[]; readonly pushedAt?: string }[];
  readonly referrers: readonly {
    readonly target: number;
    readonly kind: (typeof REFERRER_KINDS)[number];
    readonly bySubject: boolean;
    readonly tagged: boolean;
    readonly pushedAt?: string;
  }[];
  readonly tags: readonly { readonly name: string; readonly target: number }[];
  readonly revisionsVisible: boolean;
  readonly failed: boolean;
}

/** Images are shared across repositories by seed, layers across images: blobs are too, as on a real disk. */
const imageSpec = fc.record({
  seed: fc.integer({ min: 0, max: 11 }),
  layers: fc.uniqueArray(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 3 }),
  pushedAt: maybe(fc.constantFrom(...PUSH_TIMES)),
  created: maybe(fc.constantFrom(...BUILD_TIMES)),
});

const repositorySpec: fc.Arbitrary<RepositorySpec> = fc
  .uniqueArray(imageSpec, { minLength: 1, maxLength: 7, selector: (spec) => spec.seed })
  .chain((images) =>
    fc.record({
      images: fc.constant(images),
      indexes: fc.array(
        fc.record({
          children: fc.uniqueArray(fc.integer({ min: 0, max: images.length - 1 }), {
            minLength: 1,
            maxLength: 3,
          }),
          pushedAt: maybe(fc.constantFrom(...PUSH_TIMES)),
        }),
        { maxLength: 2 },
      ),
      // A target past the images and indexes is a subject that is gone: an orphan.
      referrers: fc.array(
        fc.record({
          target: fc.integer({ min: 0, max: images.length + 2 }),
          kind: fc.constantFrom(...REFERRER_KINDS),
          bySubject: fc.boolean(),
          tagged: fc.boolean(),
          pushedAt: maybe(fc.constantFrom(...PUSH_TIMES)),
        }),
        { maxLength: 3 },
      ),
      // A target of -1 is a tag whose manifest could not be read.
      tags: fc.uniqueArray(
        fc.record({
          name: fc.constantFrom(...TAG_NAMES),
          target: fc.integer({ min: -1, max: images.length + 1 }),
        }),
        { maxLength: 8, selector: (tag) => tag.name },
      ),
      revisionsVisible: fc.integer({ min: 0, max: 3 }).map((roll) => roll > 0),
      // One repository in ten fails to scan.
      failed: fc.integer({ min: 0, max: 9 }).map((roll) => roll === 0),
    }),
  );

const hexOf = (digest: Digest) => digest.slice('sha256:'.length);

function referrerTag(subject: Digest, kind: (typeof REFERRER_KINDS)[number]): string {
  return kind === 'fallback' ? `sha256-${hexOf(subject)}` : `sha256-${hexOf(subject)}.${kind}`;
}

function buildRepository(name: string, spec: RepositorySpec): Repository {
  const visible = <T extends string | undefined>(at: T) => (spec.revisionsVisible ? at : undefined);
  const images = spec.images.map((s) =>
    image(`image-${s.seed}`, {
      layers: s.layers.map((layer) => `layer-${layer}`),
      ...(visible(s.pushedAt) ? { pushedAt: s.pushedAt } : {}),
      ...(s.created ? { created: s.created } : {}),
    }),
  );
  const indexes = spec.indexes.map((s, n) =>
    index(
      `${name}-index-${n}-${s.children.join('.')}`,
      s.children.map((child) => images[child] as Manifest),
      visible(s.pushedAt) ? { pushedAt: s.pushedAt } : {},
    ),
  );
  const targets: Manifest[] = [...images, ...indexes];
  const tags: Tag[] = [];
  const referrers = spec.referrers.map((s, n) => {
    const subject = targets[s.target]?.digest ?? digestOf(`${name}-gone-${s.target}`);
    const referrer = image(`${name}-referrer-${n}-${s.kind}-${hexOf(subject)}`, {
      layers: [`${name}-signature-${n}`],
      configType: SIGNATURE_CONFIG,
      ...(visible(s.pushedAt) ? { pushedAt: s.pushedAt } : {}),
      ...(s.bySubject ? { subject } : {}),
    });
    if (s.tagged || !s.bySubject) tags.push({ name: referrerTag(subject, s.kind), digest: referrer.digest });
    return referrer;
  });
  for (const tag of spec.tags) {
    const digest = tag.target < 0 ? digestOf(`${name}-unreadable`) : targets[tag.target]?.digest;
    if (digest) tags.push({ name: tag.name, digest });
  }
  const unique = [...new Map([...targets, ...referrers].map((m) => [m.digest, m])).values()];
  const uniqueTags = [...new Map(tags.map((t) => [t.name, t])).values()];
  if (spec.failed) {
    return {
      name,
      tags: uniqueTags,
      manifests: [],
      revisionsVisible: false,
      error: 'HTTP 500 from the registry',
    };
  }
  return { name, tags: uniqueTags, manifests: unique, revisionsVisible: spec.revisionsVisible };
}

/** Every blob the manifests of an inventory reference, once each, with its size. */
function storedBlobs(repositories: readonly Repository[]) {
  const sizes = new Map<Digest, number>();
  for (const repository of repositories)
    for (const manifest of repository.manifests)
      for (const blob of blobsOf(manifest)) sizes.set(blob.digest, blob.size);
  sizes.set(digestOf('left by an earlier delete'), 4096);
  return [...sizes].map(([digest, size]) => ({ digest, size }));
}

/**
 * Inventories as a scan finds them: repositories of images (some shared with other repositories), multi-arch
 * indexes over them, signatures and attestations by `subject` field or cosign tag (orphans too), untagged
 * revisions, tags on children, tags whose manifest could not be read, failed repositories; push times that
 * tie, fall within grace periods or lie in the future, build times of 1970.
 */
export const inventories: fc.Arbitrary<Inventory> = fc
  .uniqueArray(fc.constantFrom(...REPOSITORY_NAMES), { minLength: 1, maxLength: 3 })
  .chain((names) =>
    fc.tuple(
      fc.constant(names),
      fc.array(repositorySpec, { minLength: names.length, maxLength: names.length }),
    ),
  )
  .chain(([names, specs]) => {
    const repositories = names.map((name, n) => buildRepository(name, specs[n] as RepositorySpec));
    return fc.record({ complete: fc.boolean(), listed: fc.boolean() }).map(({ complete, listed }) => ({
      ...inventory(...repositories),
      catalogComplete: complete,
      ...(listed ? { storedBlobs: storedBlobs(repositories) } : {}),
    }));
  });

/** Tag groups whose patterns overlap (`rc-3-pr` is in both of the first two), each keeping by count or age. */
const groupInput = fc
  .record(
    {
      tags: fc.constantFrom('^rc-', 'pr', '^v1', 'build'),
      keepLast: fc.integer({ min: 0, max: 3 }),
      keepDays: fc.constantFrom(1, 7, '36h'),
    },
    { requiredKeys: ['tags'] },
  )
  .map((group) => (group.keepDays === undefined ? { keepLast: 1, ...group } : group));

/** Rules as a person writes them: an untagged-only one gives no other way of keeping tagged images. */
const ruleInput: fc.Arbitrary<RuleInput> = fc
  .record(
    {
      keepLast: fc.integer({ min: 0, max: 4 }),
      keepDays: fc.constantFrom(1, 7, 30),
      keepTags: fc.subarray(['^latest$', '^v1', 'stable$'], { minLength: 1 }),
      groups: fc.array(groupInput, { maxLength: 3 }),
      untaggedOnly: fc.integer({ min: 0, max: 4 }).map((roll) => roll === 0),
      untaggedGrace: fc.constantFrom('0', '1h', '24h', '7d'),
      protect: fc.integer({ min: 0, max: 4 }).map((roll) => roll === 0),
    },
    { requiredKeys: [] },
  )
  .map(({ keepLast, keepDays, keepTags, groups, ...rule }) =>
    rule.untaggedOnly
      ? rule
      : {
          ...rule,
          ...(keepLast !== undefined ? { keepLast } : {}),
          ...(keepDays !== undefined ? { keepDays } : {}),
          ...(keepTags !== undefined ? { keepTags } : {}),
          ...(groups !== undefined ? { groups } : {}),
        },
  );

/** Policies from the command line's rule and a policy file's per-repository rules. */
export const policies: fc.Arbitrary<Policy> = fc
  .record({
    flags: ruleInput.map((rule) => (rule.untaggedOnly ? rule : { keepLast: 2, ...rule })),
    rules: fc.array(fc.tuple(fc.subarray(['web/*', '**', 'base', 'team/**'], { minLength: 1 }), ruleInput), {
      maxLength: 2,
    }),
  })
  .map(({ flags, rules }) =>
    buildPolicy({ rules: rules.map(([repositories, rule]) => ({ repositories, ...rule })) }, flags),
  );

/** The same items in any order. */
const permutation = <T>(items: readonly T[]): fc.Arbitrary<T[]> =>
  fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });

/** The inventory with its repositories, and each repository's tags and manifests, and the stored blobs, reordered. */
export const reordered = (inv: Inventory): fc.Arbitrary<Inventory> =>
  fc
    .tuple(
      permutation(inv.repositories).chain((repositories) =>
        fc.tuple(
          ...repositories.map((repository) =>
            fc
              .tuple(permutation(repository.tags), permutation(repository.manifests))
              .map(([tags, manifests]): Repository => ({ ...repository, tags, manifests })),
          ),
        ),
      ),
      permutation(inv.storedBlobs ?? []),
    )
    .map(([repositories, blobs]) => ({
      ...inv,
      repositories,
      ...(inv.storedBlobs ? { storedBlobs: blobs } : {}),
    }));
