import type { Inventory } from './domain/inventory.js';
import type { Digest } from './domain/names.js';
import {
  type DeleteCheck,
  type DeletionUnit,
  deletesRefused,
  type MaxDelete,
  overMaxDelete,
  type Plan,
  plan,
  revisionsPushedSince,
} from './domain/plan.js';
import type { Policy } from './domain/policy.js';
import { errorCode, errorMessage } from './error-message.js';
import { createLimit, type Limit } from './limit.js';
import type {
  Clock,
  DeleteOutcome,
  HostParams,
  HostRun,
  HostRunner,
  Progress,
  Registry,
  StorageLister,
} from './ports.js';
import { formatBytes, plural } from './report/format.js';
import { type Scanned, scan } from './scan.js';
import { currentTags, type TagToVerify, type Verification, verifyTags } from './verify.js';

export interface CleanupPorts {
  readonly registry: Registry;
  readonly storage?: StorageLister;
  /** Runs the host script; needed only to collect garbage. */
  readonly host?: HostRunner;
  readonly clock: Clock;
  readonly progress?: Progress;
}

export interface ScanRequest {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

export interface PlanRequest extends ScanRequest {
  readonly policy: Policy;
  /** The most manifests the run may delete; the plan records it. */
  readonly maxDelete?: MaxDelete;
}

export interface PlannedRun {
  readonly inventory: Inventory;
  readonly plan: Plan;
  /** Every repository in the catalog, selected or not. */
  readonly catalog: readonly string[];
}

/** Scans the selected repositories, with the storage when the ports can read it. */
export function scanSelection(ports: CleanupPorts, request: ScanRequest): Promise<Scanned> {
  return scan({
    registry: ports.registry,
    include: request.include,
    exclude: request.exclude,
    clock: ports.clock,
    ...(ports.storage ? { storage: ports.storage } : {}),
    ...(ports.progress ? { progress: ports.progress } : {}),
  });
}

/**
 * Scans the registry, decides what is stale and, when something is, checks that the registry will let it be
 * deleted. Changes nothing.
 */
export async function makePlan(ports: CleanupPorts, request: PlanRequest): Promise<PlannedRun> {
  const { inventory, catalog } = await scanSelection(ports, request);
  const decided = {
    ...plan(inventory, request.policy, ports.clock.now()),
    ...(request.maxDelete ? { maxDelete: request.maxDelete } : {}),
  };
  return {
    inventory,
    plan: await withDeleteCheck(ports.registry, decided),
    catalog,
  };
}

/**
 * The plan with `deletes` told afresh: a DELETE that cannot delete anything, sent to the first repository the
 * plan deletes in. A plan that deletes nothing is not checked. A check that fails is `unknown`: deleting then
 * finds out.
 */
export async function withDeleteCheck(registry: Registry, planned: Plan): Promise<Plan> {
  const { deletes: _earlier, ...rest } = planned;
  const target = planned.repositories.find((r) => r.error === undefined && r.deletions.length > 0);
  if (!target) return rest;
  let deletes: DeleteCheck;
  try {
    deletes = await registry.checkDeletes(target.name);
  } catch (error) {
    deletes = {
      status: 'unknown',
      repository: target.name,
      problem: `the check failed: ${errorMessage(error)}`,
    };
  }
  return { ...rest, deletes };
}

export interface DeletedManifest {
  readonly repository: string;
  readonly digest: Digest;
  readonly outcome: 'deleted' | 'already-gone';
}

export interface SkippedUnit {
  readonly repository: string;
  readonly digest: Digest;
  readonly reason: string;
}

export interface FailedDeletion {
  readonly repository: string;
  readonly digest: Digest;
  readonly error: string;
}

export interface DeletionReport {
  readonly deleted: readonly DeletedManifest[];
  readonly skipped: readonly SkippedUnit[];
  readonly failed: readonly FailedDeletion[];
  /**
   * Set when the plan deletes more than its cap allows (nothing was attempted), or the registry refused deletes
   * outright, or the plan's check said it would (nothing after that was attempted).
   */
  readonly stoppedBy?: { readonly code: string; readonly message: string };
}

/** The code of a plan not carried out because it deletes more manifests than its cap allows. */
export const MAX_DELETE_CODE = 'RJ_MAX_DELETE';

/** Errors after which no further delete can succeed: the registry refuses deletes as configured. */
const STOPPING_CODES: ReadonlySet<string> = new Set(['RJ_DELETE_DISABLED', 'RJ_READ_ONLY', 'RJ_AUTH']);
/** The same codes for a refusal the plan's check already found. */
const REFUSAL_CODES: Partial<Record<DeleteCheck['status'], string>> = {
  disabled: 'RJ_DELETE_DISABLED',
  'read-only': 'RJ_READ_ONLY',
  denied: 'RJ_AUTH',
};

export const STILL_SERVED = 'the registry acknowledged the delete but still serves the manifest';

/**
 * Deletes what the plan says, repository by repository. Right before a repository's deletions its tags are
 * resolved again; a unit whose digests are no longer pointed to by exactly the tags the plan saw (a tag moved,
 * or a new tag points there) is skipped. A 404 counts as already done. A DELETE the registry acknowledges counts
 * only once a HEAD by digest right after it answers 404; a manifest still served is a failed deletion, and the
 * rest of its unit is left alone. That one immediate check is the contract: a cache in front of the registry
 * that serves a deleted manifest a while longer makes the deletion count as failed, and the next run finds it
 * gone.
 */
export async function applyPlan(ports: CleanupPorts, planned: Plan): Promise<DeletionReport> {
  const tooMany = overMaxDelete(planned);
  if (tooMany) {
    return { deleted: [], skipped: [], failed: [], stoppedBy: { code: MAX_DELETE_CODE, message: tooMany } };
  }
  const refused = deletesRefused(planned);
  const refusal = planned.deletes && REFUSAL_CODES[planned.deletes.status];
  if (refused && refusal) {
    return { deleted: [], skipped: [], failed: [], stoppedBy: { code: refusal, message: refused } };
  }
  const limit = createLimit(ports.registry.concurrency);
  const deleted: DeletedManifest[] = [];
  const skipped: SkippedUnit[] = [];
  const failed: FailedDeletion[] = [];
  let stoppedBy: DeletionReport['stoppedBy'];
  const work = planned.repositories.filter((repository) => repository.deletions.length > 0);
  let done = 0;
  await Promise.all(
    work.map(async (repository) => {
      if (stoppedBy) return;
      let current: Map<Digest, string[]>;
      try {
        current = await tagsByDigest(ports.registry, repository.name, limit);
      } catch (error) {
        for (const unit of repository.deletions) {
          failed.push({
            repository: repository.name,
            digest: unit.root,
            error: `tags could not be re-read: ${errorMessage(error)}`,
          });
        }
        return;
      }
      await Promise.all(
        repository.deletions.map(async (unit) => {
          const moved = changedTags(unit, current);
          if (moved) {
            skipped.push({
              repository: repository.name,
              digest: unit.root,
              reason: `registry changed since the plan: ${moved}`,
            });
            return;
          }
          for (const step of unit.steps) {
            if (stoppedBy) return;
            let outcome: DeleteOutcome;
            try {
              outcome = await limit(() => ports.registry.deleteManifest(repository.name, step.digest));
            } catch (error) {
              const code = errorCode(error);
              if (code && STOPPING_CODES.has(code)) stoppedBy ??= { code, message: errorMessage(error) };
              else
                failed.push({ repository: repository.name, digest: step.digest, error: errorMessage(error) });
              return;
            }
            const present =
              outcome === 'deleted'
                ? await stillPresent(ports.registry, repository.name, step.digest, limit)
                : undefined;
            if (present) {
              failed.push({ repository: repository.name, digest: step.digest, error: present });
              return;
            }
            deleted.push({ repository: repository.name, digest: step.digest, outcome });
          }
        }),
      );
      done += 1;
      ports.progress?.update(`cleaned ${done}/${work.length} repositories`);
    }),
  );
  return { deleted, skipped, failed, ...(stoppedBy ? { stoppedBy } : {}) };
}

/** Why a manifest whose DELETE the registry acknowledged is not deleted; undefined once a HEAD finds it gone. */
async function stillPresent(
  registry: Registry,
  repository: string,
  digest: Digest,
  limit: Limit,
): Promise<string | undefined> {
  try {
    return (await limit(() => registry.resolveManifest(repository, digest))) === undefined
      ? undefined
      : STILL_SERVED;
  } catch (error) {
    return `the registry acknowledged the delete, but checking that the manifest is gone failed: ${errorMessage(error)}`;
  }
}

/** Where every tag of a repository points right now: digest → tag names. */
async function tagsByDigest(
  registry: Registry,
  repository: string,
  limit: Limit,
): Promise<Map<Digest, string[]>> {
  const byDigest = new Map<Digest, string[]>();
  await Promise.all(
    (await currentTags(registry, [repository], limit)).map(async ({ tag }) => {
      const digest = await limit(() => registry.resolveManifest(repository, tag));
      if (digest) byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
    }),
  );
  return byDigest;
}

function changedTags(unit: DeletionUnit, current: Map<Digest, string[]>): string | undefined {
  for (const step of unit.steps) {
    const now = new Set(current.get(step.digest) ?? []);
    const before = new Set(step.tags);
    const gone = [...before].filter((tag) => !now.has(tag));
    const added = [...now].filter((tag) => !before.has(tag));
    if (gone.length > 0) return `tag ${gone.join(', ')} no longer points to ${step.digest.slice(0, 19)}`;
    if (added.length > 0) return `tag ${added.join(', ')} now points to ${step.digest.slice(0, 19)}`;
  }
  return undefined;
}

export type GarbageCollection =
  | { readonly ran: false; readonly reason: string }
  | ({ readonly ran: true } & HostRun);

export interface RunReport {
  readonly registry: string;
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly outcome: 'succeeded' | 'failed';
  /** Why the run failed, the most serious first; empty on success. */
  readonly problems: readonly string[];
  readonly plan: Pick<Plan, 'totals' | 'reclaim' | 'maxDelete'> & {
    readonly failedRepositories: readonly string[];
  };
  readonly deletions: DeletionReport;
  readonly garbageCollection: GarbageCollection;
  readonly reclaimed: {
    readonly estimatedBytes: number;
    readonly estimateExact: boolean;
    /** Blobs no manifest referenced before the run; the garbage collector frees them too. */
    readonly unreferencedBytes?: number;
    readonly measuredBytes?: number;
  };
  readonly verification: Verification;
  /** Set when collection was still running and verification was left to whoever picks the command up. */
  readonly verificationDeferred?: true;
}

export interface CleanupRequest {
  /** Host script parameters; undefined skips garbage collection. */
  readonly garbageCollection?: HostParams;
  /**
   * Collect even when nothing was deleted and the storage showed no unreferenced blob (or was not read):
   * a collection that failed earlier left garbage that only the host can see.
   */
  readonly collectAlways?: boolean;
  /**
   * When collection is still running at the runner's deadline, skip verification and do not count the running
   * collection as a problem: the caller verifies once the command ends (before the registry restarts, its
   * answers prove nothing, and a stopped registry answers nothing at all).
   */
  readonly deferVerificationWhileCollecting?: boolean;
}

const numberField = (run: HostRun, field: string): number | undefined => {
  const value = run.summary?.[field];
  return typeof value === 'number' ? value : undefined;
};

/**
 * The whole cycle on a plan: delete, collect garbage on the host, verify that every kept tag still resolves
 * completely, and report. A broken kept image fails the run and comes first in its problems; kept tags the
 * deadline left unverified fail it too. A collection is judged by what it freed, not only by its status.
 */
export async function runCleanup(
  ports: CleanupPorts,
  planned: Plan,
  request: CleanupRequest,
): Promise<RunReport> {
  const started = ports.clock.now();
  const deletions = await applyPlan(ports, planned);
  const removed = deletions.deleted.filter((d) => d.outcome === 'deleted').length;

  let garbageCollection: GarbageCollection;
  if (!request.garbageCollection) garbageCollection = { ran: false, reason: 'not requested' };
  else if (!ports.host) garbageCollection = { ran: false, reason: 'no host runner configured' };
  else if (deletions.stoppedBy?.code === MAX_DELETE_CODE)
    garbageCollection = {
      ran: false,
      reason: 'nothing was deleted: the plan deletes more than its cap allows',
    };
  else if (deletions.stoppedBy) garbageCollection = { ran: false, reason: 'deletes were refused' };
  else if (removed === 0 && !request.collectAlways && !(planned.reclaim.unreferencedBytes ?? 0)) {
    garbageCollection = {
      ran: false,
      reason: `nothing was deleted${planned.reclaim.unreferencedBytes === undefined ? '' : ' and no blob is unreferenced'}`,
    };
  } else {
    ports.progress?.update('collecting garbage on the registry host');
    // A runner that cannot even start the script (SSM refused, bash missing) fails the collection, not the
    // report: the deletions already made must still be told.
    const run: HostRun = await ports.host
      .run('collect', request.garbageCollection)
      .catch((error: unknown) => ({ state: 'finished', reason: errorMessage(error) }));
    // What a report needs of the run; runners may carry more (a stderr tail, SSM's own status).
    garbageCollection = {
      ran: true,
      state: run.state,
      ...(run.exitCode !== undefined ? { exitCode: run.exitCode } : {}),
      ...(run.summary ? { summary: run.summary } : {}),
      ...(run.commandId !== undefined ? { commandId: run.commandId } : {}),
      ...(run.reason !== undefined ? { reason: run.reason } : {}),
      ...(run.interrupted ? { interrupted: true as const } : {}),
    };
  }

  const deferred =
    request.deferVerificationWhileCollecting === true &&
    garbageCollection.ran &&
    garbageCollection.state === 'running';
  let verification: Verification = { tags: 0, manifests: 0, blobs: 0, broken: [], unverified: [] };
  if (!deferred) {
    ports.progress?.update('verifying kept images');
    verification = await verifyTags(ports.registry, await tagsAfterRun(ports.registry, planned));
  }

  const problems = verificationProblems(verification);
  if (deletions.stoppedBy) problems.push(deletions.stoppedBy.message);
  if (deletions.failed.length > 0) problems.push(`${deletions.failed.length} deletions failed`);
  const failedRepositories = planned.repositories.filter((r) => r.error !== undefined).map((r) => r.name);
  if (failedRepositories.length > 0)
    problems.push(`${failedRepositories.length} repositories could not be scanned`);
  if (garbageCollection.ran && !deferred) {
    problems.push(...collectionProblems(garbageCollection));
    const short = await shortfall(ports, planned, deletions, garbageCollection);
    if (short) problems.push(short);
  }

  const finished = ports.clock.now();
  const measured = garbageCollection.ran ? numberField(garbageCollection, 'bytesFreed') : undefined;
  return {
    registry: planned.registry,
    startedAt: started.toISOString(),
    durationSeconds: Math.round((finished.getTime() - started.getTime()) / 100) / 10,
    outcome: problems.length === 0 ? 'succeeded' : 'failed',
    problems,
    plan: {
      totals: planned.totals,
      reclaim: planned.reclaim,
      ...(planned.maxDelete ? { maxDelete: planned.maxDelete } : {}),
      failedRepositories,
    },
    deletions,
    garbageCollection,
    reclaimed: {
      estimatedBytes: planned.reclaim.bytes,
      estimateExact: planned.reclaim.exact,
      ...(planned.reclaim.unreferencedBytes !== undefined
        ? { unreferencedBytes: planned.reclaim.unreferencedBytes }
        : {}),
      ...(measured !== undefined ? { measuredBytes: measured } : {}),
    },
    verification,
    ...(deferred ? { verificationDeferred: true as const } : {}),
  };
}

/**
 * What a run verifies at its end: every tag the scanned repositories hold now. Those are the kept tags, and
 * any image pushed while the run deleted and collected, which an online collection can break; a kept tag
 * someone else deleted meanwhile is not. When the tags cannot be listed, the kept tags of the plan.
 */
async function tagsAfterRun(registry: Registry, planned: Plan): Promise<TagToVerify[]> {
  const repositories = planned.repositories.filter((r) => r.error === undefined).map((r) => r.name);
  try {
    return await currentTags(registry, repositories, createLimit(registry.concurrency));
  } catch {
    return keptTags(planned);
  }
}

/** The tags the plan keeps in every repository it could scan. */
export function keptTags(planned: Plan): TagToVerify[] {
  return planned.repositories
    .filter((repository) => repository.error === undefined)
    .flatMap((repository) =>
      repository.tags
        .filter((t) => t.decision === 'keep')
        .map((t) => ({ repository: repository.name, tag: t.tag })),
    );
}

export interface CollectionCheck {
  readonly verification: Verification;
  /** Broken kept images first, then kept tags left unverified, then what went wrong with the collection. */
  readonly problems: readonly string[];
  readonly measuredBytes?: number;
}

/**
 * For a collection an earlier run left running, once its command has ended: verifies the given tags and
 * reports the collection's problems and the bytes it freed, as runCleanup would have.
 */
export async function checkCollection(
  registry: Registry,
  run: HostRun,
  tags: readonly TagToVerify[],
): Promise<CollectionCheck> {
  const verification = await verifyTags(registry, tags);
  const problems = [...verificationProblems(verification), ...collectionProblems(run)];
  const measuredBytes = numberField(run, 'bytesFreed');
  return { verification, problems, ...(measuredBytes !== undefined ? { measuredBytes } : {}) };
}

function verificationProblems(verification: Verification): string[] {
  const problems = verification.broken.map(
    (broken) => `BROKEN kept image ${broken.repository}:${broken.tag}: ${broken.problem}`,
  );
  const unverified = verification.unverified.length;
  if (unverified > 0) {
    problems.push(
      `verification incomplete: ${unverified} of ${plural(verification.tags, 'kept tag')} not verified before the deadline`,
    );
  }
  return problems;
}

/** What is wrong with a collection: still running, failed, or without a summary. */
function collectionProblems(run: HostRun): string[] {
  if (run.state === 'running') {
    return [`garbage collection still running on the host (command ${run.commandId ?? 'unknown'})`];
  }
  const status = run.summary?.status;
  if (status === 'done' || status === 'skipped') return [];
  const reason =
    run.summary?.reason ??
    run.reason ??
    (run.summary ? 'see the host log' : 'the host script printed no summary');
  return [`garbage collection failed (exit ${run.exitCode ?? 'unknown'}): ${reason}`];
}

const bytes = (n: number) => `${formatBytes(n)} (${n} bytes)`;

/**
 * Why a collection that says it is done freed less than the plan's exact estimate, unless something other than
 * the collector explains it: a planned delete not made by this run, or a manifest pushed since the plan (its
 * blobs may be ones the plan expected freed). Blobs pushed during the collection cannot hide a shortfall: the
 * host counts only the blobs that existed before it. Freeing more is normal: unreferenced blobs go too.
 */
async function shortfall(
  ports: CleanupPorts,
  planned: Plan,
  deletions: DeletionReport,
  run: HostRun,
): Promise<string | undefined> {
  const measured = numberField(run, 'bytesFreed');
  const { bytes: expected, exact } = planned.reclaim;
  if (run.summary?.status !== 'done' || measured === undefined || !exact || measured >= expected) return;
  const steps = planned.repositories.flatMap((r) => r.deletions).flatMap((unit) => unit.steps).length;
  if (deletions.deleted.filter((d) => d.outcome === 'deleted').length !== steps || !ports.storage) return;
  let unexplained = '';
  try {
    if (revisionsPushedSince(planned, await ports.storage.list()) > 0) return;
  } catch (error) {
    unexplained = ` (pushes since the plan could not be ruled out: ${errorMessage(error)})`;
  }
  const log = typeof run.summary.log === 'string' ? `see the log ${run.summary.log}` : 'see the host log';
  return `garbage collection freed ${bytes(measured)} of the ${bytes(expected)} the plan's exact estimate promised: the collector did not collect what was deleted${unexplained}; ${log}`;
}
