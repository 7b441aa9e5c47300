import type { Inventory, Manifest, Repository } from './inventory.js';
import type { Digest } from './names.js';
import type { TagPattern } from './pattern.js';
import { describeRule, type Policy, type Rule, ruleFor } from './policy.js';
import { DAY_MS, formatDuration } from './quantity.js';
import { byRecency, imageTimes, type Recency } from './recency.js';
import { type Reclaim, reclaim } from './reclaim.js';

export type Decision = 'keep' | 'delete';

export interface TagDecision {
  readonly tag: string;
  readonly digest: Digest;
  readonly decision: Decision;
  readonly reason: string;
}

export type ManifestRole = 'image' | 'child' | 'referrer' | 'untagged';

export interface ImageTime {
  readonly at: string;
  readonly source: 'pushed' | 'created';
}

export interface ManifestDecision {
  readonly digest: Digest;
  readonly kind: Manifest['kind'];
  readonly role: ManifestRole;
  readonly tags: readonly string[];
  readonly decision: Decision;
  readonly reason: string;
  readonly time?: ImageTime;
  readonly warnings?: readonly string[];
}

/** One digest to delete, with the tags that must still point to it (and only those) when it is deleted. */
export interface DeletionStep {
  readonly digest: Digest;
  readonly tags: readonly string[];
}

/**
 * Digests deleted together, in order: referrers and exclusive children first, the root last, so that an
 * interrupted run leaves the root (still tagged) for the next run to finish.
 */
export interface DeletionUnit {
  readonly root: Digest;
  readonly steps: readonly DeletionStep[];
}

export interface RepositoryPlan {
  readonly name: string;
  readonly rule: string;
  readonly error?: string;
  readonly tags: readonly TagDecision[];
  readonly manifests: readonly ManifestDecision[];
  readonly deletions: readonly DeletionUnit[];
}

export interface PlanTotals {
  readonly repositories: number;
  readonly repositoriesFailed: number;
  readonly tagsKept: number;
  readonly tagsDeleted: number;
  readonly manifestsKept: number;
  readonly manifestsDeleted: number;
}

export type DeleteStatus = 'allowed' | 'disabled' | 'read-only' | 'denied' | 'unknown';

/** Whether the registry carries out manifest deletes, as a DELETE that cannot delete anything found out. */
export interface DeleteCheck {
  readonly status: DeleteStatus;
  /** The repository the DELETE was sent to. */
  readonly repository: string;
  /** What the answer means, when deletes are not simply allowed. */
  readonly problem?: string;
  /** The setting to change, when there is one. */
  readonly fix?: string;
}

/** The most manifests one run may delete, and the setting that says so (`--max-delete`, `maxDelete`). */
export interface MaxDelete {
  readonly limit: number;
  readonly setting: string;
}

export interface Plan {
  readonly version: 1;
  readonly registry: string;
  readonly createdAt: string;
  readonly repositories: readonly RepositoryPlan[];
  readonly totals: PlanTotals;
  readonly reclaim: Reclaim;
  /** Set when the plan deletes something: whether the registry will let it. */
  readonly deletes?: DeleteCheck;
  /** Set when a run may delete only so many manifests: a plan that deletes more is not carried out at all. */
  readonly maxDelete?: MaxDelete;
}

/** Statuses after which no delete can succeed, so clean must not start. */
const REFUSING: ReadonlySet<DeleteStatus> = new Set(['disabled', 'read-only', 'denied']);

/** Why the registry will refuse this plan's deletes and how to change that; undefined when nothing says so. */
export function deletesRefused(plan: Plan): string | undefined {
  const check = plan.deletes;
  if (!check || !REFUSING.has(check.status)) return undefined;
  return [check.problem ?? `deletes are ${check.status}`, check.fix].filter(Boolean).join('. ');
}

/**
 * Manifest revisions in storage now that the plan does not keep: pushed since it was made, a deleted digest
 * pushed again included. Their blobs may be ones the plan expected the garbage collector to free.
 */
export function revisionsPushedSince(
  plan: Plan,
  stored: ReadonlyMap<string, { readonly revisions: readonly { readonly digest: Digest }[] }>,
): number {
  const kept = new Map(
    plan.repositories.map((repository) => [
      repository.name,
      new Set(repository.manifests.filter((m) => m.decision === 'keep').map((m) => m.digest)),
    ]),
  );
  let pushed = 0;
  for (const [name, repository] of stored) {
    const keptHere = kept.get(name);
    pushed += repository.revisions.filter((revision) => !keptHere?.has(revision.digest)).length;
  }
  return pushed;
}

/** Why the plan must not be carried out: it deletes more manifests than its cap allows; else undefined. */
export function overMaxDelete(plan: Plan): string | undefined {
  const cap = plan.maxDelete;
  const count = plan.totals.manifestsDeleted;
  if (!cap || count <= cap.limit) return undefined;
  return `the plan deletes ${count} manifests, more than ${cap.setting} ${cap.limit}: check the policy, or raise ${cap.setting}`;
}

/** Why clean would stop before deleting anything of this plan; undefined when nothing says it would. */
export function cleanWouldStop(plan: Plan): string | undefined {
  return overMaxDelete(plan) ?? deletesRefused(plan);
}

const EARLIEST_PLAUSIBLE = Date.UTC(2000, 0, 1);
const FUTURE_TOLERANCE_MS = 60 * 60 * 1000;

const REFERRER_TAG = /^sha256-([a-f0-9]{64})(?:\.(sig|att|sbom))?$/;

/** The subject a cosign (`sha256-<hex>.sig|.att|.sbom`) or OCI fallback (`sha256-<hex>`) tag belongs to. */
export function referrerTagSubject(tag: string): Digest | undefined {
  const match = REFERRER_TAG.exec(tag);
  return match ? (`sha256:${match[1]}` as Digest) : undefined;
}

const short = (digest: string) => digest.slice(0, 19);
const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Clocked {
  time?: ImageTime;
  /** The plausible build time, epoch ms: what ranks images pushed at the same moment. */
  built?: number;
  warnings: string[];
}

function plausible(ms: number, now: number): boolean {
  return Number.isFinite(ms) && ms >= EARLIEST_PLAUSIBLE && ms <= now + FUTURE_TOLERANCE_MS;
}

/**
 * When an image was made current: its push time when storage is visible, else its config's `created`;
 * an implausible clock is flagged and the other one used. An index takes its newest child's time where it has
 * none of its own.
 */
function imageTime(manifest: Manifest, byDigest: Map<Digest, Manifest>, now: number): Clocked {
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

/** The images one ranking orders: a group's (`tags` set) or the rule's own, with its count and age. */
interface Ranking {
  readonly tags?: TagPattern;
  readonly keepLast?: number;
  readonly keepDays?: number;
  /** Its images with a plausible time, newest first. */
  readonly ranked: Node[];
  readonly rank: Map<Digest, number>;
}

interface Node {
  readonly manifest: Manifest;
  readonly tags: string[];
  /** The subject this manifest is a referrer of (by `subject` field or by a referrer-form tag). */
  subject?: Digest;
  /** Indexes that list this manifest as a child. */
  readonly parents: Digest[];
  role: ManifestRole;
  decision?: Decision;
  reason?: string;
  clock?: Clocked;
}

function planRepository(repository: Repository, rule: Rule, now: number): RepositoryPlan {
  const ruleText = describeRule(rule);
  if (repository.error !== undefined) {
    return {
      name: repository.name,
      rule: ruleText,
      error: repository.error,
      tags: repository.tags.map((tag) => ({
        tag: tag.name,
        digest: tag.digest,
        decision: 'keep',
        reason: 'repository could not be scanned',
      })),
      manifests: [],
      deletions: [],
    };
  }

  const byDigest = new Map<Digest, Manifest>(repository.manifests.map((m) => [m.digest, m]));
  // Manifests in digest order, tags in name order: which reason wins, and how deletions are grouped, must not
  // depend on the order the inventory lists them in.
  const nodes = new Map<Digest, Node>();
  for (const manifest of [...repository.manifests].sort((a, b) => byCodePoint(a.digest, b.digest))) {
    nodes.set(manifest.digest, {
      manifest,
      tags: [],
      parents: [],
      role: 'untagged',
      subject: manifest.subject,
    });
  }
  for (const tag of [...repository.tags].sort((a, b) => byCodePoint(a.name, b.name))) {
    const node = nodes.get(tag.digest);
    if (!node) continue;
    node.tags.push(tag.name);
  }
  for (const node of nodes.values()) {
    for (const child of node.manifest.children) nodes.get(child.digest)?.parents.push(node.manifest.digest);
    const plainTags = node.tags.filter((tag) => referrerTagSubject(tag) === undefined);
    if (node.subject === undefined && plainTags.length === 0 && node.tags.length > 0) {
      node.subject = referrerTagSubject(node.tags[0] ?? '');
    }
    if (node.subject !== undefined) node.role = 'referrer';
    else if (plainTags.length > 0) node.role = 'image';
    else if (node.parents.length > 0) node.role = 'child';
  }
  // Parents are only known after every node has been visited.
  for (const node of nodes.values()) {
    if (node.role === 'untagged' && node.parents.length > 0) node.role = 'child';
  }

  const tagDecisions = new Map<string, { decision: Decision; reason: string }>();
  const kept = (node: Node, reason: string) => {
    if (node.decision === 'keep') return false;
    node.decision = 'keep';
    node.reason = reason;
    return true;
  };

  // Images are ranked by time, newest first, in each ranking one of their tags belongs to: that of every group
  // the tag matches, or the rule's own when it matches none. Unknown times are never deleted.
  const images = [...nodes.values()].filter((node) => node.role === 'image');
  for (const node of images) node.clock = imageTime(node.manifest, byDigest, now);
  const recency = (node: Node): Recency => ({
    digest: node.manifest.digest,
    at: Date.parse(node.clock?.time?.at ?? ''),
    ...(node.clock?.built !== undefined ? { built: node.clock.built } : {}),
  });
  const plainTags = (node: Node) => node.tags.filter((tag) => referrerTagSubject(tag) === undefined);
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
    ranking.ranked.sort((a, b) => byRecency(recency(a), recency(b)));
    for (const [position, node] of ranking.ranked.entries()) ranking.rank.set(node.manifest.digest, position);
  }
  const label = (node: Node) =>
    node.tags.find((tag) => referrerTagSubject(tag) === undefined) ?? short(node.manifest.digest);
  // How a tie at keep-last's cut was broken: against the first image past the cut, or the last one before it.
  const tieAtCut = (ranking: Ranking, node: Node, position: number): string | undefined => {
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
  };
  const among = (ranking: Ranking) =>
    `${ranking.keepLast} most recent${ranking.tags ? ` of /${ranking.tags.source}/` : ''}`;

  for (const node of images) {
    const time = node.clock?.time;
    const age = time ? now - Date.parse(time.at) : undefined;
    const ageText = time && age !== undefined ? `${time.source} ${formatDuration(age)} ago` : undefined;
    const keptBy = (ranking: Ranking): string | undefined => {
      const position = ranking.rank.get(node.manifest.digest);
      if (position !== undefined && ranking.keepLast !== undefined && position < ranking.keepLast) {
        const tie = tieAtCut(ranking, node, position);
        return `among ${among(ranking)} (#${position + 1}${tie ? `; ${tie}` : ''})`;
      }
      if (age !== undefined && ranking.keepDays !== undefined && age < ranking.keepDays * DAY_MS) {
        return `${ageText}, within ${ranking.keepDays}d${ranking.tags ? ` for /${ranking.tags.source}/` : ''}`;
      }
      return undefined;
    };
    const staleBy = (ranking: Ranking): string | undefined => {
      if (ranking.keepLast === undefined) return undefined;
      const position = ranking.rank.get(node.manifest.digest);
      const tie = position !== undefined ? tieAtCut(ranking, node, position) : undefined;
      return `not among ${among(ranking)}${tie ? ` (${tie})` : ''}`;
    };
    const rankings = (tag: string) => rankingsOfTag.get(tag) ?? [];
    const tagReason = (tag: string): string | undefined => {
      if (rule.protect) return `repository protected by ${rule.source}`;
      if (rule.untaggedOnly) return 'untagged-only rule';
      const pattern = rule.keepTags.find((keepTag) => keepTag.test(tag));
      if (pattern) return `matches keep-tag /${pattern.source}/`;
      for (const ranking of rankings(tag)) {
        const reason = keptBy(ranking);
        if (reason !== undefined) return reason;
      }
      if (!time) return 'no plausible push or build time';
      return undefined;
    };
    for (const tag of plainTags(node)) {
      const reason = tagReason(tag);
      if (reason !== undefined) tagDecisions.set(tag, { decision: 'keep', reason });
    }
    const keptTag = node.tags.find((tag) => tagDecisions.get(tag)?.decision === 'keep');
    if (keptTag !== undefined) {
      kept(node, `tag ${keptTag}: ${tagDecisions.get(keptTag)?.reason}`);
      for (const tag of plainTags(node)) {
        if (!tagDecisions.has(tag)) {
          tagDecisions.set(tag, { decision: 'keep', reason: `digest shared with kept tag ${keptTag}` });
        }
      }
    } else {
      for (const tag of plainTags(node)) {
        const staleWhy = [ageText, ...rankings(tag).map(staleBy)].filter(Boolean);
        tagDecisions.set(tag, { decision: 'delete', reason: `stale: ${staleWhy.join(', ')}` });
      }
    }
  }

  // Untagged manifests: kept within the grace period, or when their push time is unknown. A protected
  // repository keeps every manifest, orphaned referrers too.
  for (const node of nodes.values()) {
    if (rule.protect) {
      kept(node, `repository protected by ${rule.source}`);
      continue;
    }
    if (node.tags.length > 0) continue;
    const pushed = node.manifest.pushedAt;
    if (pushed === undefined) {
      if (node.role === 'untagged') kept(node, 'untagged, push time unknown');
      continue;
    }
    const age = now - Date.parse(pushed);
    if (age < rule.untaggedGraceMs) {
      kept(node, `pushed ${formatDuration(age)} ago, within ${formatDuration(rule.untaggedGraceMs)} grace`);
    }
  }

  // What kept manifests need: their children, and every referrer of them (signatures follow their subject).
  const referrersOf = new Map<Digest, Node[]>();
  for (const node of nodes.values()) {
    if (node.subject === undefined) continue;
    referrersOf.set(node.subject, [...(referrersOf.get(node.subject) ?? []), node]);
  }
  const keepNeeded = (queue: Node[]) => {
    for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
      for (const child of next.manifest.children) {
        const childNode = nodes.get(child.digest);
        if (childNode && kept(childNode, `child of kept index ${label(next)}`)) queue.push(childNode);
      }
      for (const referrer of referrersOf.get(next.manifest.digest) ?? []) {
        if (kept(referrer, `${referrerKind(referrer)} of kept ${next.manifest.kind} ${label(next)}`))
          queue.push(referrer);
      }
    }
  };
  keepNeeded([...nodes.values()].filter((node) => node.decision === 'keep'));
  // An untagged-only rule also keeps the tagged manifests nothing above kept (a signature whose subject is
  // gone, say), and what they need.
  if (rule.untaggedOnly) {
    const tagged = [...nodes.values()].filter((node) => node.tags.length > 0 && node.decision !== 'keep');
    for (const node of tagged) kept(node, 'untagged-only rule');
    keepNeeded(tagged);
  }

  // Everything else goes, each with the reason it is no longer needed.
  for (const node of nodes.values()) {
    if (node.decision === 'keep') continue;
    node.decision = 'delete';
    if (node.role === 'image') {
      const tags = node.tags.filter((tag) => referrerTagSubject(tag) === undefined);
      node.reason = `every tag is stale (${tags.join(', ')})`;
    } else if (node.role === 'referrer') {
      const subject = node.subject ? nodes.get(node.subject) : undefined;
      node.reason = subject
        ? `${referrerKind(node)} of deleted ${subject.manifest.kind} ${label(subject)}`
        : `orphan ${referrerKind(node)}: subject ${short(node.subject ?? '')} is gone`;
    } else if (node.role === 'child') {
      node.reason = `child of deleted index ${node.parents.map((p) => label(nodes.get(p) as Node)).join(', ')}`;
    } else {
      node.reason = `untagged for ${formatDuration(now - Date.parse(node.manifest.pushedAt ?? ''))}`;
    }
  }
  // A tag follows its digest: a stale tag on a digest kept for another reason (the child of a kept index, say)
  // stays, and says why.
  for (const tag of repository.tags) {
    const node = nodes.get(tag.digest);
    const decided = tagDecisions.get(tag.name);
    if (decided && (decided.decision === 'keep' || node?.decision !== 'keep')) continue;
    tagDecisions.set(tag.name, {
      decision: node?.decision ?? 'keep',
      reason: node?.reason ?? 'manifest could not be read',
    });
  }

  return {
    name: repository.name,
    rule: ruleText,
    tags: repository.tags.map((tag) => {
      const { decision, reason } = tagDecisions.get(tag.name) ?? { decision: 'keep', reason: '' };
      return { tag: tag.name, digest: tag.digest, decision, reason };
    }),
    manifests: [...nodes.values()].map((node) => ({
      digest: node.manifest.digest,
      kind: node.manifest.kind,
      role: node.role,
      tags: node.tags,
      decision: node.decision ?? 'keep',
      reason: node.reason ?? '',
      ...(node.clock?.time ? { time: node.clock.time } : {}),
      ...(node.clock && node.clock.warnings.length > 0 ? { warnings: node.clock.warnings } : {}),
    })),
    deletions: deletionUnits(nodes, referrersOf),
  };
}

function referrerKind(node: Node): string {
  const suffix = node.tags.map((tag) => REFERRER_TAG.exec(tag)?.[2]).find(Boolean);
  if (suffix === 'sig') return 'signature';
  if (suffix === 'att') return 'attestation';
  if (suffix === 'sbom') return 'SBOM';
  return 'referrer';
}

/** Groups deleted digests into units: each root with the children and referrers that go with it. */
function deletionUnits(nodes: Map<Digest, Node>, referrersOf: Map<Digest, Node[]>): DeletionUnit[] {
  const deleted = (digest: Digest) => nodes.get(digest)?.decision === 'delete';
  const dependents = (node: Node): Node[] => [
    ...(referrersOf.get(node.manifest.digest) ?? []),
    ...node.manifest.children
      .map((child) => nodes.get(child.digest))
      .filter((n): n is Node => n !== undefined),
  ];
  const isRoot = (node: Node) =>
    !(node.subject !== undefined && deleted(node.subject)) && !node.parents.some((parent) => deleted(parent));
  const assigned = new Set<Digest>();
  const units: DeletionUnit[] = [];
  const collect = (node: Node, steps: DeletionStep[]) => {
    assigned.add(node.manifest.digest);
    for (const dependent of dependents(node)) {
      if (dependent.decision === 'delete' && !assigned.has(dependent.manifest.digest))
        collect(dependent, steps);
    }
    steps.push({ digest: node.manifest.digest, tags: [...node.tags] });
  };
  const candidates = [...nodes.values()]
    .filter((node) => node.decision === 'delete')
    .sort((a, b) => Number(isRoot(b)) - Number(isRoot(a)));
  for (const node of candidates) {
    if (assigned.has(node.manifest.digest)) continue;
    const steps: DeletionStep[] = [];
    collect(node, steps);
    units.push({ root: node.manifest.digest, steps });
  }
  return units;
}

/** Decides, for every tag and digest of the inventory, keep or delete and why. Pure: no I/O, no clock. */
export function plan(inventory: Inventory, policy: Policy, now: Date): Plan {
  const nowMs = now.getTime();
  const repositories = inventory.repositories.map((repository) =>
    planRepository(repository, ruleFor(policy, repository.name), nowMs),
  );
  const count = <T extends { decision: Decision }>(items: readonly T[], decision: Decision) =>
    items.filter((item) => item.decision === decision).length;
  const totals: PlanTotals = {
    repositories: repositories.length,
    repositoriesFailed: repositories.filter((r) => r.error !== undefined).length,
    tagsKept: repositories.reduce((sum, r) => sum + count(r.tags, 'keep'), 0),
    tagsDeleted: repositories.reduce((sum, r) => sum + count(r.tags, 'delete'), 0),
    manifestsKept: repositories.reduce((sum, r) => sum + count(r.manifests, 'keep'), 0),
    manifestsDeleted: repositories.reduce((sum, r) => sum + count(r.manifests, 'delete'), 0),
  };
  const deletedByRepository = new Map(
    repositories.map((r) => [
      r.name,
      new Set(r.manifests.filter((m) => m.decision === 'delete').map((m) => m.digest)),
    ]),
  );
  return {
    version: 1,
    registry: inventory.registry,
    createdAt: now.toISOString(),
    repositories,
    totals,
    reclaim: reclaim(inventory, deletedByRepository),
  };
}
