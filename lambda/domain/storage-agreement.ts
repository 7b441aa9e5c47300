import type { Digest } from './names.js';

/**
 * Whether a storage listing belongs to the registry the API answers for. Storage given by hand can be another
 * registry's, or a stale copy: its untagged revisions and push times would then decide what gets deleted.
 * The comparison is a sample, so its cost does not grow with the registry.
 */

export interface StorageTag {
  readonly name: string;
  readonly digest: Digest;
  readonly pushedAt?: string;
}

export interface StorageRepository {
  readonly tags: readonly StorageTag[];
}

export interface AgreementSample {
  /** Repositories whose tag lists are compared with the API's. */
  readonly repositories: number;
  /** Tags of each sampled repository whose digests are resolved through the API. */
  readonly tagsPerRepository: number;
}

export const AGREEMENT_SAMPLE: AgreementSample = { repositories: 8, tagsPerRepository: 3 };

export type Disagreement =
  | {
      readonly kind: 'repository-only-in-registry' | 'repository-only-in-storage';
      readonly repository: string;
    }
  | {
      readonly kind: 'tag-only-in-registry' | 'tag-only-in-storage';
      readonly repository: string;
      readonly tag: string;
    }
  | {
      readonly kind: 'tag-digest';
      readonly repository: string;
      readonly tag: string;
      readonly stored: Digest;
      readonly registry: Digest;
    };

/** `count` items spread evenly over `items`, the first and the last included; all of them when few. */
export function spread<T>(items: readonly T[], count: number): T[] {
  if (items.length <= count) return [...items];
  if (count <= 0) return [];
  if (count === 1) return items.slice(0, 1);
  const picked = new Set<number>();
  for (let i = 0; i < count; i++) picked.add(Math.round((i * (items.length - 1)) / (count - 1)));
  return [...picked].map((index) => items[index] as T);
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Repositories that only one side lists: every one of them, in name order. */
export function compareCatalogs(stored: Iterable<string>, catalog: readonly string[]): Disagreement[] {
  const inStorage = new Set(stored);
  const inCatalog = new Set(catalog);
  const onlyInRegistry = [...inCatalog].filter((name) => !inStorage.has(name)).sort(byName);
  const onlyInStorage = [...inStorage].filter((name) => !inCatalog.has(name)).sort(byName);
  return [
    ...onlyInRegistry.map((repository) => ({ kind: 'repository-only-in-registry' as const, repository })),
    ...onlyInStorage.map((repository) => ({ kind: 'repository-only-in-storage' as const, repository })),
  ];
}

/**
 * The repositories whose tags are compared: both sides list them, and those with tags in storage come first,
 * spread over the name order so that one namespace does not make up the whole sample.
 */
export function sampleRepositories(
  stored: ReadonlyMap<string, StorageRepository>,
  catalog: readonly string[],
  sample: AgreementSample = AGREEMENT_SAMPLE,
): string[] {
  const both = [...new Set(catalog)].filter((name) => stored.has(name)).sort(byName);
  const tagged = both.filter((name) => (stored.get(name)?.tags.length ?? 0) > 0);
  const picked = spread(tagged, sample.repositories);
  if (picked.length < sample.repositories) {
    const untagged = both.filter((name) => !tagged.includes(name));
    picked.push(...spread(untagged, sample.repositories - picked.length));
  }
  return picked;
}

/** Tags that only one side lists, in name order. */
export function compareTagLists(
  repository: string,
  storedTags: readonly StorageTag[],
  registryTags: readonly string[],
): Disagreement[] {
  const inStorage = new Set(storedTags.map((tag) => tag.name));
  const inRegistry = new Set(registryTags);
  return [
    ...[...inRegistry]
      .filter((tag) => !inStorage.has(tag))
      .sort(byName)
      .map((tag) => ({ kind: 'tag-only-in-registry' as const, repository, tag })),
    ...[...inStorage]
      .filter((tag) => !inRegistry.has(tag))
      .sort(byName)
      .map((tag) => ({ kind: 'tag-only-in-storage' as const, repository, tag })),
  ];
}

/**
 * The stored tags to resolve through the API: the most recently pushed one (a stale copy differs there
 * first), then others spread over the name order. Only tags both sides list.
 */
export function tagsToResolve(
  storedTags: readonly StorageTag[],
  registryTags: readonly string[],
  sample: AgreementSample = AGREEMENT_SAMPLE,
): StorageTag[] {
  const listed = new Set(registryTags);
  const both = storedTags.filter((tag) => listed.has(tag.name)).sort((a, b) => byName(a.name, b.name));
  if (both.length <= sample.tagsPerRepository) return both;
  const newest = both.reduce((found, tag) => ((tag.pushedAt ?? '') > (found.pushedAt ?? '') ? tag : found));
  const rest = both.filter((tag) => tag !== newest);
  return [newest, ...spread(rest, sample.tagsPerRepository - 1)];
}

/**
 * A tag whose stored digest is not what the API resolves it to. A tag the API lists but cannot resolve (its
 * manifest is gone) says nothing about whose storage this is.
 */
export function compareDigest(
  repository: string,
  stored: StorageTag,
  resolved: Digest | undefined,
): Disagreement | undefined {
  if (resolved === undefined || resolved === stored.digest) return undefined;
  return { kind: 'tag-digest', repository, tag: stored.name, stored: stored.digest, registry: resolved };
}

/** Identifies a disagreement across two reads, whatever the digests were each time. */
export function disagreementKey(disagreement: Disagreement): string {
  return 'tag' in disagreement
    ? `${disagreement.kind} ${disagreement.repository}:${disagreement.tag}`
    : `${disagreement.kind} ${disagreement.repository}`;
}

const short = (digest: Digest): string => digest.slice(7, 19);

export function describeDisagreement(disagreement: Disagreement): string {
  switch (disagreement.kind) {
    case 'repository-only-in-registry':
      return `repository ${disagreement.repository} is in the registry, not in storage`;
    case 'repository-only-in-storage':
      return `repository ${disagreement.repository} is in storage, not in the registry`;
    case 'tag-only-in-registry':
      return `${disagreement.repository}:${disagreement.tag} is in the registry, not in storage`;
    case 'tag-only-in-storage':
      return `${disagreement.repository}:${disagreement.tag} is in storage, not in the registry`;
    case 'tag-digest':
      return `${disagreement.repository}:${disagreement.tag} is ${short(disagreement.stored)} in storage, ${short(disagreement.registry)} in the registry`;
  }
}

export interface MismatchReport {
  /** How the storage was given, e.g. `--storage-root /srv/registry`. */
  readonly storage: string;
  readonly registryUrl: string;
  readonly disagreements: readonly Disagreement[];
  /** What to do about it, in lines of up to 76 characters. */
  readonly fix: string;
}

const EXAMPLE_ORDER: readonly Disagreement['kind'][] = [
  'tag-digest',
  'repository-only-in-registry',
  'tag-only-in-registry',
  'repository-only-in-storage',
  'tag-only-in-storage',
];

/** Up to `count` disagreements, one of each kind in turn, so that the examples show how far apart they are. */
export function examples(disagreements: readonly Disagreement[], count: number): Disagreement[] {
  const groups = EXAMPLE_ORDER.map((kind) => disagreements.filter((d) => d.kind === kind));
  const picked: Disagreement[] = [];
  for (let round = 0; picked.length < Math.min(count, disagreements.length); round++) {
    for (const group of groups) {
      const next = group[round];
      if (next !== undefined && picked.length < count) picked.push(next);
    }
  }
  return picked;
}

/** A few short lines: what does not match, up to three examples, and the fix. */
export function mismatchMessage(report: MismatchReport): string {
  const count = report.disagreements.length;
  const shown = examples(report.disagreements, 3);
  return [
    `${report.storage} does not match ${report.registryUrl}:`,
    '  the storage belongs to another registry or is a stale copy.',
    count === 1
      ? '  1 disagreement:'
      : `  ${count} disagreements${count > shown.length ? ', among them' : ''}:`,
    ...shown.map((d) => `    ${describeDisagreement(d)}`),
    ...report.fix.split('\n').map((line) => `  ${line}`),
  ].join('\n');
}
