import { Interner } from './interning.js';
import type { Inventory, Manifest, Repository } from './inventory.js';
import type { Digest } from './names.js';
import { describeRule, type Policy, type Rule, ruleFor } from './policy.js';
import { type Reclaim, reclaimFlagged } from './reclaim.js';
import {
  classifyRoles,
  type Decision,
  deletedVerdict,
  dependentsOfKept,
  type ImageTime,
  imageTime,
  keptForTag,
  type ManifestRole,
  manifestVerdict,
  type Node,
  plainTags,
  rankImages,
  referrersBySubject,
  sharedWithKeptTag,
  staleTag,
  type TaggedImage,
  tagVerdict,
  type Verdict,
} from './rules.js';

export type { Decision, ImageTime, ManifestRole } from './rules.js';
export { referrerTagSubject } from './rules.js';

export interface TagDecision {
  readonly tag: string;
  readonly digest: Digest;
  readonly decision: Decision;
  readonly reason: string;
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

const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A repository the scan could not read: every tag is kept, nothing is deleted. */
function unscannedRepository(repository: Repository, ruleText: string): RepositoryPlan {
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

const NO_TAGS: readonly string[] = Object.freeze([]);

/** The repository's manifests as nodes in digest order, each with its tags in name order, and its role. */
function nodesOf(repository: Repository): Map<Digest, Node> {
  // Which reason wins, and how deletions are grouped, must not depend on the order the inventory lists them in.
  const tagsOf = new Map<Digest, string[]>();
  for (const tag of [...repository.tags].sort((a, b) => byCodePoint(a.name, b.name))) {
    const tags = tagsOf.get(tag.digest);
    if (tags) tags.push(tag.name);
    else tagsOf.set(tag.digest, [tag.name]);
  }
  const nodes = new Map<Digest, Node>();
  for (const manifest of [...repository.manifests].sort((a, b) => byCodePoint(a.digest, b.digest))) {
    nodes.set(manifest.digest, {
      manifest,
      tags: tagsOf.get(manifest.digest) ?? NO_TAGS,
      parents: [],
      role: 'untagged',
      subject: manifest.subject,
    });
  }
  classifyRoles(nodes);
  return nodes;
}

/** Marks the node kept for the reason given, unless it is kept already; true when it was not. */
function kept(node: Node, reason: string): boolean {
  if (node.decision === 'keep') return false;
  node.decision = 'keep';
  node.reason = reason;
  return true;
}

/**
 * Asks the tag rules about every plain tag of every image. An image is kept when one of its tags is, and its
 * other tags with it; when none is, every tag is stale.
 */
function decideImages(
  images: readonly Node[],
  rule: Rule,
  now: number,
  tagDecisions: Map<string, Verdict>,
): void {
  const { rankingsOfTag } = rankImages(images, rule);
  const rankingsOf = (tag: string) => rankingsOfTag.get(tag) ?? [];
  for (const node of images) {
    const image: TaggedImage = { node, rule, now, rankingsOf };
    const tags = plainTags(node);
    for (const tag of tags) {
      const verdict = tagVerdict(tag, image);
      if (verdict !== undefined) tagDecisions.set(tag, verdict);
    }
    const keptTag = node.tags.find((tag) => tagDecisions.get(tag)?.decision === 'keep');
    const keptVerdict = keptTag !== undefined ? tagDecisions.get(keptTag) : undefined;
    if (keptTag !== undefined && keptVerdict !== undefined) {
      kept(node, keptForTag(keptTag, keptVerdict));
      for (const tag of tags) {
        if (!tagDecisions.has(tag)) tagDecisions.set(tag, sharedWithKeptTag(keptTag));
      }
    } else {
      for (const tag of tags) tagDecisions.set(tag, staleTag(tag, image));
    }
  }
}

/** Keeps, transitively, what the kept manifests in the queue need: their children and their referrers. */
function keepDependents(
  queue: Node[],
  nodes: ReadonlyMap<Digest, Node>,
  referrersOf: ReadonlyMap<Digest, readonly Node[]>,
): void {
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    for (const [dependent, verdict] of dependentsOfKept(next, nodes, referrersOf)) {
      if (kept(dependent, verdict.reason)) queue.push(dependent);
    }
  }
}

/** A repository's plan, and which of its manifests (in the inventory's order) it deletes. */
interface Planned {
  readonly plan: RepositoryPlan;
  readonly deleted?: Uint8Array;
}

function planRepository(repository: Repository, rule: Rule, now: number, strings: Interner): Planned {
  const ruleText = describeRule(rule);
  if (repository.error !== undefined) return { plan: unscannedRepository(repository, ruleText) };

  const byDigest = new Map<Digest, Manifest>(repository.manifests.map((m) => [m.digest, m]));
  const nodes = nodesOf(repository);
  const tagDecisions = new Map<string, Verdict>();

  const images = [...nodes.values()].filter((node) => node.role === 'image');
  for (const node of images) node.clock = imageTime(node.manifest, byDigest, now);
  decideImages(images, rule, now, tagDecisions);

  for (const node of nodes.values()) {
    const verdict = manifestVerdict(node, rule, now);
    if (verdict !== undefined) kept(node, verdict.reason);
  }

  const referrersOf = referrersBySubject(nodes);
  keepDependents(
    [...nodes.values()].filter((node) => node.decision === 'keep'),
    nodes,
    referrersOf,
  );
  // An untagged-only rule also keeps the tagged manifests nothing above kept (a signature whose subject is
  // gone, say), and what they need.
  if (rule.untaggedOnly) {
    const tagged = [...nodes.values()].filter((node) => node.tags.length > 0 && node.decision !== 'keep');
    for (const node of tagged) kept(node, 'untagged-only rule');
    keepDependents(tagged, nodes, referrersOf);
  }

  // Everything else goes, each with the reason it is no longer needed.
  for (const node of nodes.values()) {
    if (node.decision === 'keep') continue;
    const verdict = deletedVerdict(node, nodes, now);
    node.decision = verdict.decision;
    node.reason = verdict.reason;
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

  // A plan of 300,000 manifests lives as long as the run: its reasons are shared and flat, and its entries
  // plain objects of one shape each.
  const reason = (text: string | undefined) => strings.string(text ?? '');
  const deleted = Uint8Array.from(repository.manifests, (manifest) =>
    nodes.get(manifest.digest)?.decision === 'delete' ? 1 : 0,
  );
  const planned: RepositoryPlan = {
    name: repository.name,
    rule: ruleText,
    tags: repository.tags.map((tag) => {
      const { decision, reason: why } = tagDecisions.get(tag.name) ?? { decision: 'keep', reason: '' };
      return { tag: tag.name, digest: tag.digest, decision, reason: reason(why) };
    }),
    manifests: [...nodes.values()].map((node): ManifestDecision => {
      const { digest, kind } = node.manifest;
      const { role, tags } = node;
      const decision = node.decision ?? 'keep';
      const why = reason(node.reason);
      const time = node.clock?.time;
      const warnings = node.clock?.warnings;
      if (warnings !== undefined && warnings.length > 0) {
        return time
          ? { digest, kind, role, tags, decision, reason: why, time, warnings }
          : { digest, kind, role, tags, decision, reason: why, warnings };
      }
      return time
        ? { digest, kind, role, tags, decision, reason: why, time }
        : { digest, kind, role, tags, decision, reason: why };
    }),
    deletions: deletionUnits(nodes, referrersOf),
  };
  return { plan: planned, deleted };
}

/** Groups deleted digests into units: each root with the children and referrers that go with it. */
function deletionUnits(
  nodes: ReadonlyMap<Digest, Node>,
  referrersOf: ReadonlyMap<Digest, readonly Node[]>,
): DeletionUnit[] {
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
    steps.push({ digest: node.manifest.digest, tags: node.tags });
  };
  const candidates = [...nodes.values()]
    .filter((node) => node.decision === 'delete')
    .sort((a, b) => Number(isRoot(b)) - Number(isRoot(a)));
  // Steps are gathered in one list and copied out at their count: a list grown by pushing keeps room for
  // seventeen, and most units are one step.
  const steps: DeletionStep[] = [];
  for (const node of candidates) {
    if (assigned.has(node.manifest.digest)) continue;
    steps.length = 0;
    collect(node, steps);
    units.push({ root: node.manifest.digest, steps: steps.slice() });
  }
  return units;
}

/** Decides, for every tag and digest of the inventory, keep or delete and why. Pure: no I/O, no clock. */
export function plan(inventory: Inventory, policy: Policy, now: Date): Plan {
  const nowMs = now.getTime();
  const strings = new Interner();
  const planned = inventory.repositories.map((repository) =>
    planRepository(repository, ruleFor(policy, repository.name), nowMs, strings),
  );
  const repositories = planned.map((p) => p.plan);
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
  return {
    version: 1,
    registry: inventory.registry,
    createdAt: now.toISOString(),
    repositories,
    totals,
    reclaim: reclaimFlagged(
      inventory,
      planned.map((p) => p.deleted),
    ),
  };
}
