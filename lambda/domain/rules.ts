import type { Manifest } from './inventory.js';
import type { Digest } from './names.js';
import type { TagPattern } from './pattern.js';
import type { Rule } from './policy.js';
import { DAY_MS, formatDuration } from './quantity.js';
import { byRecency, imageTimes, type Recency } from './recency.js';

// The retention rules, one pure function each: a rule looks at one tag or manifest and returns its verdict
// (keep, or delete, and why), or undefined when it has nothing to say. plan.ts asks them in order.

export type Decision = 'keep' | 'delete';

export type ManifestRole = 'image' | 'child' | 'referrer' | 'untagged';

export interface ImageTime {
  readonly at: string;
  readonly source: 'pushed' | 'created';
}

export interface Verdict {
  readonly decision: Decision;
  readonly reason: string;
}

const keep = (reason: string): Verdict => ({ decision: 'keep', reason });
const remove = (reason: string): Verdict => ({ decision: 'delete', reason });

export interface Clocked {
  time?: ImageTime;
  /** The plausible build time, epoch ms: what ranks images pushed at the same moment. */
  built?: number;
  warnings: string[];
}

/** One manifest of the repository being planned, with what the rules found out about it so far. */
export interface Node {
  readonly manifest: Manifest;
  readonly tags: readonly string[];
  /** The subject this manifest is a referrer of (by `subject` field or by a referrer-form tag). */
  subject?: Digest;
  /** Indexes that list this manifest as a child. */
  readonly parents: Digest[];
  role: ManifestRole;
  decision?: Decision;
  reason?: string;
  clock?: Clocked;
}

/** The images one ranking orders: a group's (`tags` set) or the rule's own, with its count and age. */
export interface Ranking {
  readonly tags?: TagPattern;
  readonly keepLast?: number;
  readonly keepDays?: number;
  /** Its images with a plausible time, newest first. */
  readonly ranked: Node[];
  readonly rank: Map<Digest, number>;
}

/** What the tag rules see of the image a tag points to. */
export interface TaggedImage {
  readonly node: Node;
  readonly rule: Rule;
  readonly now: number;
  /** The rankings a tag of this image belongs to. */
  readonly rankingsOf: (tag: string) => readonly Ranking[];
}

// --- Tags, digests and roles ----------------------------------------------------------------------------

const REFERRER_TAG = /^sha256-([a-f0-9]{64})(?:\.(sig|att|sbom))?$/;

/** The subject a cosign (`sha256-<hex>.sig|.att|.sbom`) or OCI fallback (`sha256-<hex>`) tag belongs to. */
export function referrerTagSubject(tag: string): Digest | undefined {
  const match = REFERRER_TAG.exec(tag);
  return match ? (`sha256:${match[1]}` as Digest) : undefined;
}

export const short = (digest: string) => digest.slice(0, 19);

/** A node's tags that are not referrer-form tags. */
export const plainTags = (node: Node) => node.tags.filter((tag) => referrerTagSubject(tag) === undefined);

/** How reasons name a manifest: its first plain tag, else its short digest. */
export const label = (node: Node) =>
  node.tags.find((tag) => referrerTagSubject(tag) === undefined) ?? short(node.manifest.digest);

/** What a referrer is, by the suffix of its referrer-form tag. */
export function referrerKind(node: Node): string {
  const suffix = node.tags.map((tag) => REFERRER_TAG.exec(tag)?.[2]).find(Boolean);
  if (suffix === 'sig') return 'signature';
  if (suffix === 'att') return 'attestation';
  if (suffix === 'sbom') return 'SBOM';
  return 'referrer';
}

/**
 * Links each node to the indexes that list it, then gives it its role: a referrer (by `subject`, or by
 * referrer-form tags alone), an image (a plain tag), a child (of some index), else untagged.
 */
export function classifyRoles(nodes: ReadonlyMap<Digest, Node>): void {
  for (const node of nodes.values()) {
    for (const child of node.manifest.children) nodes.get(child.digest)?.parents.push(node.manifest.digest);
    const plain = plainTags(node);
    if (node.subject === undefined && plain.length === 0 && node.tags.length > 0) {
      node.subject = referrerTagSubject(node.tags[0] ?? '');
    }
    if (node.subject !== undefined) node.role = 'referrer';
    else if (plain.length > 0) node.role = 'image';
    else if (node.parents.length > 0) node.role = 'child';
  }
  // Parents are only known after every node has been visited.
  for (const node of nodes.values()) {
    if (node.role === 'untagged' && node.parents.length > 0) node.role = 'child';
  }
}

// --- Image times: unknown and implausible clocks --------------------------------------------------------

const EARLIEST_PLAUSIBLE = Date.UTC(2000, 0, 1);
const FUTURE_TOLERANCE_MS = 60 * 60 * 1000;

function plausible(ms: number, now: number): boolean {
  return Number.isFinite(ms) && ms >= EARLIEST_PLAUSIBLE && ms <= now + FUTURE_TOLERANCE_MS;
}

/**
 * When an image was made current: its push time when storage is visible, else its config's `created`;
 * an implausible clock is flagged and the other one used. An index takes its newest child's time where it has
 * none of its own.
 */
export function imageTime(manifest: Manifest, byDigest: ReadonlyMap<Digest, Manifest>, now: number): Clocked {
  const warnings: string[] = [];
  const { pushed, created } = imageTimes(manifest, byDigest);
  const builtMs = created === undefined ? Number.NaN : Date.parse(created);
  const built = plausible(builtMs, now) ? { built: builtMs } : {};
  for (const [source, at] of [
    ['pushed', pushed],
    ['created', created],
  ] as const) {
    if (at === undefined) continue;
    if (plausible(Date.parse(at), now)) return { time: { at, source }, ...built, warnings };
    warnings.push(`implausible ${source === 'pushed' ? 'push' : 'build'} time ${at}`);
  }
  return { ...built, warnings };
}

export const recency = (node: Node): Recency => ({
  digest: node.manifest.digest,
  at: Date.parse(node.clock?.time?.at ?? ''),
  ...(node.clock?.built !== undefined ? { built: node.clock.built } : {}),
});

// --- Rankings -------------------------------------------------------------------------------------------

/**
 * Ranks images by time, newest first, in each ranking one of their tags belongs to: that of every group the
 * tag matches, or the rule's own when it matches none. Images without a plausible time are in no ranking.
 */
export function rankImages(
  images: readonly Node[],
  rule: Rule,
): { readonly rankingsOfTag: ReadonlyMap<string, readonly Ranking[]> } {
  const groupRankings: Ranking[] = rule.groups.map((group) => ({ ...group, ranked: [], rank: new Map() }));
  const ownRanking: Ranking = {
    keepLast: rule.keepLast,
    keepDays: rule.keepDays,
    ranked: [],
    rank: new Map(),
  };
  const rankingsOfTag = new Map<string, Ranking[]>();
  for (const node of images) {
    for (const tag of plainTags(node)) {
      const matched = groupRankings.filter((ranking) => ranking.tags?.test(tag));
      const rankings = matched.length > 0 ? matched : [ownRanking];
      rankingsOfTag.set(tag, rankings);
      // A node's tags are visited one after another: the last image ranked is the one to compare with.
      for (const ranking of rankings) {
        if (node.clock?.time !== undefined && ranking.ranked.at(-1) !== node) ranking.ranked.push(node);
      }
    }
  }
  for (const ranking of [...groupRankings, ownRanking]) {
    // Each image's recency once, not once per comparison.
    const keyed = ranking.ranked.map((node) => ({ node, recency: recency(node) }));
    keyed.sort((a, b) => byRecency(a.recency, b.recency));
    for (const [position, { node }] of keyed.entries()) ranking.ranked[position] = node;
    for (const [position, node] of ranking.ranked.entries()) ranking.rank.set(node.manifest.digest, position);
  }
  return { rankingsOfTag };
}

/** How a tie at keep-last's cut was broken: against the first image past the cut, or the last one before it. */
function tieAtCut(ranking: Ranking, node: Node, position: number): string | undefined {
  const { keepLast } = ranking;
  if (keepLast === undefined || keepLast === 0) return undefined;
  const other = ranking.ranked[position < keepLast ? keepLast : keepLast - 1];
  if (!other || other === node || recency(other).at !== recency(node).at) return undefined;
  const same =
    node.clock?.time?.source === 'created' ? 'built at the same time as' : 'pushed in the same second as';
  const mine = node.clock?.built;
  const theirs = other.clock?.built;
  const newer = byRecency(recency(node), recency(other)) < 0;
  const by =
    mine === theirs
      ? 'ranked by digest'
      : mine === undefined
        ? 'no build time'
        : theirs === undefined
          ? 'which has no build time'
          : `${newer ? 'newer' : 'older'} by build time`;
  return `${same} ${label(other)}, ${by}`;
}

const among = (ranking: Ranking) =>
  `${ranking.keepLast} most recent${ranking.tags ? ` of /${ranking.tags.source}/` : ''}`;

/** The image's age by its time, epoch ms, when it has a plausible one. */
function ageOf(image: TaggedImage): number | undefined {
  const time = image.node.clock?.time;
  return time ? image.now - Date.parse(time.at) : undefined;
}

function ageText(image: TaggedImage): string | undefined {
  const time = image.node.clock?.time;
  const age = ageOf(image);
  return time && age !== undefined ? `${time.source} ${formatDuration(age)} ago` : undefined;
}

// --- Tag rules, in the order they are asked -------------------------------------------------------------

export type TagRule = (tag: string, image: TaggedImage) => Verdict | undefined;

/** A protected repository keeps everything. */
export const protectedRepository: TagRule = (_tag, { rule }) =>
  rule.protect ? keep(`repository protected by ${rule.source}`) : undefined;

/** An untagged-only rule keeps every tag. */
export const untaggedOnly: TagRule = (_tag, { rule }) =>
  rule.untaggedOnly ? keep('untagged-only rule') : undefined;

/** A tag that matches a keep-tag pattern is kept. */
export const keepTagPattern: TagRule = (tag, { rule }) => {
  const pattern = rule.keepTags.find((keepTag) => keepTag.test(tag));
  return pattern ? keep(`matches keep-tag /${pattern.source}/`) : undefined;
};

/** Keep last N: the image is among the ranking's N most recent. */
export function keptByCount(ranking: Ranking, image: TaggedImage): Verdict | undefined {
  const position = ranking.rank.get(image.node.manifest.digest);
  if (position === undefined || ranking.keepLast === undefined || position >= ranking.keepLast)
    return undefined;
  const tie = tieAtCut(ranking, image.node, position);
  return keep(`among ${among(ranking)} (#${position + 1}${tie ? `; ${tie}` : ''})`);
}

/** Keep days: the image is younger than the ranking's age. */
export function keptByAge(ranking: Ranking, image: TaggedImage): Verdict | undefined {
  const age = ageOf(image);
  if (age === undefined || ranking.keepDays === undefined || age >= ranking.keepDays * DAY_MS)
    return undefined;
  return keep(
    `${ageText(image)}, within ${ranking.keepDays}d${ranking.tags ? ` for /${ranking.tags.source}/` : ''}`,
  );
}

/** Every ranking the tag belongs to, by count then by age, the first that keeps it. */
export const keptByRanking: TagRule = (tag, image) => {
  for (const ranking of image.rankingsOf(tag)) {
    const verdict = keptByCount(ranking, image) ?? keptByAge(ranking, image);
    if (verdict) return verdict;
  }
  return undefined;
};

/** An image without a plausible push or build time is never deleted: its age is unknown. */
export const unknownTime: TagRule = (_tag, { node }) =>
  node.clock?.time ? undefined : keep('no plausible push or build time');

export const TAG_RULES: readonly TagRule[] = [
  protectedRepository,
  untaggedOnly,
  keepTagPattern,
  keptByRanking,
  unknownTime,
];

/** The first verdict a tag rule gives the tag; undefined when none keeps it. */
export function tagVerdict(tag: string, image: TaggedImage): Verdict | undefined {
  for (const rule of TAG_RULES) {
    const verdict = rule(tag, image);
    if (verdict) return verdict;
  }
  return undefined;
}

/** A tag of an image kept by another of its tags stays with it. */
export const sharedWithKeptTag = (keptTag: string): Verdict => keep(`digest shared with kept tag ${keptTag}`);

/** A tag no rule keeps: its age and how it fell out of each of its rankings. */
export function staleTag(tag: string, image: TaggedImage): Verdict {
  const staleBy = (ranking: Ranking): string | undefined => {
    if (ranking.keepLast === undefined) return undefined;
    const position = ranking.rank.get(image.node.manifest.digest);
    const tie = position !== undefined ? tieAtCut(ranking, image.node, position) : undefined;
    return `not among ${among(ranking)}${tie ? ` (${tie})` : ''}`;
  };
  const why = [ageText(image), ...image.rankingsOf(tag).map(staleBy)].filter(Boolean);
  return remove(`stale: ${why.join(', ')}`);
}

/** The image a kept tag points to is kept, for that tag. */
export const keptForTag = (tag: string, verdict: Verdict): string => `tag ${tag}: ${verdict.reason}`;

// --- Untagged manifests ---------------------------------------------------------------------------------

export type ManifestRule = (node: Node, rule: Rule, now: number) => Verdict | undefined;

/** A protected repository keeps every manifest, orphaned referrers too. */
export const protectedManifest: ManifestRule = (_node, rule) =>
  rule.protect ? keep(`repository protected by ${rule.source}`) : undefined;

/** An untagged revision whose push time is unknown cannot be aged, so it stays. */
export const untaggedPushTimeUnknown: ManifestRule = (node) =>
  node.tags.length === 0 && node.manifest.pushedAt === undefined && node.role === 'untagged'
    ? keep('untagged, push time unknown')
    : undefined;

/** An untagged manifest pushed within the grace period stays: a push may still be tagging it. */
export const withinUntaggedGrace: ManifestRule = (node, rule, now) => {
  const pushed = node.manifest.pushedAt;
  if (node.tags.length > 0 || pushed === undefined) return undefined;
  const age = now - Date.parse(pushed);
  return age < rule.untaggedGraceMs
    ? keep(`pushed ${formatDuration(age)} ago, within ${formatDuration(rule.untaggedGraceMs)} grace`)
    : undefined;
};

export const MANIFEST_RULES: readonly ManifestRule[] = [
  protectedManifest,
  untaggedPushTimeUnknown,
  withinUntaggedGrace,
];

/** The first verdict a manifest rule gives the node; undefined when none keeps it. */
export function manifestVerdict(node: Node, rule: Rule, now: number): Verdict | undefined {
  for (const manifestRule of MANIFEST_RULES) {
    const verdict = manifestRule(node, rule, now);
    if (verdict) return verdict;
  }
  return undefined;
}

// --- Dependents: what a kept manifest needs -------------------------------------------------------------

/** A child of a kept index is kept with it. */
export const childOfKeptIndex = (index: Node): Verdict => keep(`child of kept index ${label(index)}`);

/** A referrer of a kept manifest (its signature, attestation, SBOM) is kept with it. */
export const referrerOfKeptSubject = (referrer: Node, subject: Node): Verdict =>
  keep(`${referrerKind(referrer)} of kept ${subject.manifest.kind} ${label(subject)}`);

/** The referrers of each subject, by its digest. */
export function referrersBySubject(nodes: ReadonlyMap<Digest, Node>): Map<Digest, Node[]> {
  const referrersOf = new Map<Digest, Node[]>();
  for (const node of nodes.values()) {
    if (node.subject === undefined) continue;
    const referrers = referrersOf.get(node.subject);
    if (referrers) referrers.push(node);
    else referrersOf.set(node.subject, [node]);
  }
  return referrersOf;
}

/**
 * The dependents of a kept manifest, each with the verdict that keeps it: its children, then every referrer
 * of it.
 */
export function* dependentsOfKept(
  node: Node,
  nodes: ReadonlyMap<Digest, Node>,
  referrersOf: ReadonlyMap<Digest, readonly Node[]>,
): Generator<readonly [Node, Verdict]> {
  for (const child of node.manifest.children) {
    const childNode = nodes.get(child.digest);
    if (childNode) yield [childNode, childOfKeptIndex(node)];
  }
  for (const referrer of referrersOf.get(node.manifest.digest) ?? []) {
    yield [referrer, referrerOfKeptSubject(referrer, node)];
  }
}

// --- Why a manifest nothing kept is deleted -------------------------------------------------------------

export function deletedVerdict(node: Node, nodes: ReadonlyMap<Digest, Node>, now: number): Verdict {
  if (node.role === 'image') return remove(`every tag is stale (${plainTags(node).join(', ')})`);
  if (node.role === 'referrer') {
    const subject = node.subject ? nodes.get(node.subject) : undefined;
    return remove(
      subject
        ? `${referrerKind(node)} of deleted ${subject.manifest.kind} ${label(subject)}`
        : `orphan ${referrerKind(node)}: subject ${short(node.subject ?? '')} is gone`,
    );
  }
  if (node.role === 'child') {
    return remove(
      `child of deleted index ${node.parents.map((p) => label(nodes.get(p) as Node)).join(', ')}`,
    );
  }
  return remove(`untagged for ${formatDuration(now - Date.parse(node.manifest.pushedAt ?? ''))}`);
}
