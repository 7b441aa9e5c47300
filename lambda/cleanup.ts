import {
  collectionProblems,
  RUNNING_STATUSES,
  recordPending,
  recoverAfter,
  type Settled,
  settle,
  settlePending,
  settleUnrecorded,
  summaryNumber,
} from './collection.js';
import type { Inventory } from './domain/inventory.js';
import type { Digest } from './domain/names.js';
import {
  cleanWouldStop,
  type DeleteCheck,
  type DeletionUnit,
  deletesRefused,
  overMaxDelete,
  type Plan,
  plan,
  revisionsPushedSince,
} from './domain/plan.js';
import { describeError, errorCode, errorMessage } from './error-message.js';
import { createLimit, type Limit } from './limit.js';
import type {
  Clock,
  DeleteOutcome,
  HostParams,
  HostResume,
  HostRun,
  HostRunner,
  LeaseOutcome,
  LeaseRecord,
  PendingCollections,
  Progress,
  Registry,
  RunLease,
  StorageLister,
} from './ports.js';
import { formatBytes, plural } from './report/format.js';
import type { CollectionReport } from './report/function.js';
import type {
  CleanupRequest,
  CommandStatusRequest,
  CycleRequest,
  PlanRequest,
  Selection,
} from './request.js';
import { type Scanned, scan } from './scan.js';
import {
  currentTags,
  type TagToVerify,
  type Verification,
  verificationProblems,
  verifyTags,
} from './verify.js';

export interface CleanupPorts {
  readonly registry: Registry;
  readonly storage?: StorageLister;
  /** Runs the host script; needed only to collect garbage. */
  readonly host?: HostRunner;
  /**
   * Picks up a command a run left running. With it, a collection still running when the runner must stop is
   * verified once it ends (by its status-change event or the next run), not right away.
   */
  readonly resume?: HostResume;
  readonly clock: Clock;
  readonly progress?: Progress;
}

export interface PlannedRun {
  readonly inventory: Inventory;
  readonly plan: Plan;
  /** Every repository in the catalog, selected or not. */
  readonly catalog: readonly string[];
}

/** Scans the selected repositories, with the storage when the ports can read it. */
export function scanSelection(ports: CleanupPorts, request: Selection): Promise<Scanned> {
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

/** How a run ended: the one rule for the CLI's report and the function's. */
export type Outcome = 'succeeded' | 'failed' | 'pending' | 'nothing to do';

const judged = (problems: readonly string[]): 'succeeded' | 'failed' =>
  problems.length > 0 ? 'failed' : 'succeeded';

/**
 * A run with nothing to do (or skipped) did nothing; any problem fails it; a collection still running leaves
 * it pending; otherwise it succeeded.
 */
export function outcomeOf(run: {
  readonly problems: readonly string[];
  readonly nothingToDo?: string;
  readonly skipped?: string;
  readonly pendingCommandId?: string;
  readonly collection?: { readonly state: string };
}): Outcome {
  if (run.nothingToDo !== undefined || run.skipped !== undefined) return 'nothing to do';
  const outcome = judged(run.problems);
  if (
    outcome === 'succeeded' &&
    (run.pendingCommandId !== undefined || run.collection?.state === 'running')
  ) {
    return 'pending';
  }
  return outcome;
}

/** Seconds from start to finish, to a tenth. */
export const secondsBetween = (started: Date, finished: Date): number =>
  Math.round((finished.getTime() - started.getTime()) / 100) / 10;

/** The repositories a plan could not scan: they are left alone. */
export const unscanned = (planned: Plan): string[] =>
  planned.repositories.filter((r) => r.error !== undefined).map((r) => r.name);

/** Manifests a run deleted (not those already gone). */
export const manifestsDeleted = (deletions: DeletionReport): number =>
  deletions.deleted.filter((d) => d.outcome === 'deleted').length;

interface CarryOut {
  /** Host script parameters; undefined skips garbage collection. */
  readonly garbageCollection?: HostParams;
  readonly collectAlways?: boolean;
  /** Why garbage collection is skipped, when it is asked for but must not run. */
  readonly skipped?: string;
}

/**
 * Delete, collect garbage on the host, verify that every kept tag still resolves completely, and report. A broken
 * kept image fails the run and comes first in its problems; kept tags the deadline left unverified fail it too.
 * A collection is judged by what it freed, not only by its status. A collection still running when the runner
 * must stop is verified once it ends when the ports can resume it (before the registry restarts its answers
 * prove nothing, and a stopped registry answers nothing at all); otherwise it is a problem.
 */
export async function runCleanup(ports: CleanupPorts, planned: Plan, request: CarryOut): Promise<RunReport> {
  const started = ports.clock.now();
  const deletions = await applyPlan(ports, planned);
  const removed = manifestsDeleted(deletions);

  let garbageCollection: GarbageCollection;
  if (request.skipped !== undefined) garbageCollection = { ran: false, reason: request.skipped };
  else if (!request.garbageCollection) garbageCollection = { ran: false, reason: 'not requested' };
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
    // A collection that cannot even start (SSM refused, bash missing) fails the collection, not the report: the
    // deletions already made must still be told.
    const run: HostRun = await ports.host
      .run('collect', request.garbageCollection)
      .catch((error: unknown) => ({
        state: 'finished',
        reason: `it could not be started: ${describeError(error)}`,
      }));
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
    ports.resume !== undefined && garbageCollection.ran && garbageCollection.state === 'running';
  let verification: Verification = { tags: 0, manifests: 0, blobs: 0, broken: [], unverified: [] };
  if (!deferred) {
    ports.progress?.update('verifying kept images');
    verification = await verifyTags(ports.registry, await tagsAfterRun(ports.registry, planned));
  }

  const problems = verificationProblems(verification);
  if (deletions.stoppedBy) problems.push(deletions.stoppedBy.message);
  if (deletions.failed.length > 0) problems.push(`${deletions.failed.length} deletions failed`);
  const failedRepositories = unscanned(planned);
  if (failedRepositories.length > 0) problems.push(unscannedProblem(failedRepositories));
  if (garbageCollection.ran && !deferred) {
    problems.push(...collectionProblems(garbageCollection));
    const short = await shortfall(ports, planned, deletions, garbageCollection);
    if (short) problems.push(short);
  }

  const measured = garbageCollection.ran ? summaryNumber(garbageCollection, 'bytesFreed') : undefined;
  return {
    registry: planned.registry,
    startedAt: started.toISOString(),
    durationSeconds: secondsBetween(started, ports.clock.now()),
    outcome: judged(problems),
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

const unscannedProblem = (names: readonly string[]): string =>
  `${plural(names.length, 'repository')} could not be scanned`;

/**
 * What a run verifies at its end: every tag the scanned repositories hold now. Those are the kept tags, and
 * any image pushed while the run deleted and collected, which an online collection can break; a kept tag
 * someone else deleted meanwhile is not. When the tags cannot be listed, the kept tags of the plan.
 */
async function tagsAfterRun(registry: Registry, planned: Plan): Promise<TagToVerify[]> {
  try {
    return await currentTags(registry, scannedNames(planned), createLimit(registry.concurrency));
  } catch {
    return keptTags(planned);
  }
}

const scannedNames = (planned: Plan): string[] =>
  planned.repositories.filter((r) => r.error === undefined).map((r) => r.name);

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
  const measured = summaryNumber(run, 'bytesFreed');
  const { bytes: expected, exact } = planned.reclaim;
  if (run.summary?.status !== 'done' || measured === undefined || !exact || measured >= expected) return;
  const steps = planned.repositories.flatMap((r) => r.deletions).flatMap((unit) => unit.steps).length;
  if (manifestsDeleted(deletions) !== steps || !ports.storage) return;
  let unexplained = '';
  try {
    if (revisionsPushedSince(planned, await ports.storage.list()) > 0) return;
  } catch (error) {
    unexplained = ` (pushes since the plan could not be ruled out: ${errorMessage(error)})`;
  }
  const log = typeof run.summary.log === 'string' ? `see the log ${run.summary.log}` : 'see the host log';
  return `garbage collection freed ${bytes(measured)} of the ${bytes(expected)} the plan's exact estimate promised: the collector did not collect what was deleted${unexplained}; ${log}`;
}

/** What the engine runs on: the registry opened once the run holds its lease, and the ports around it. */
export interface EnginePorts extends Omit<CleanupPorts, 'registry'> {
  /** The registry's API, opened (credentials fetched) when the run first needs it. */
  registry(): Promise<Registry>;
  /** Where a collection left running is remembered until a later run or its status-change event settles it. */
  readonly pending?: PendingCollections;
  /** Taken before a run touches the registry or the host; a run that cannot take it is skipped. */
  readonly lease?: RunLease;
}

/** What one run of the engine did: the CLI prints it, the function publishes it. */
export interface CleanupReport {
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly outcome: Outcome;
  /** Why the run failed, the most serious first; empty when it did not. */
  readonly problems: readonly string[];
  readonly notes: readonly string[];
  /** Why the request asked for nothing. */
  readonly nothingToDo?: string;
  /** Why the run did not start: another one holds the lease. */
  readonly skipped?: string;
  /** Set once the cycle ran to its end: whether it only previewed. */
  readonly dryRun?: boolean;
  /** The plan the run carried out or previewed, with the inventory it was made from when the run made it. */
  readonly planned?: { readonly plan: Plan; readonly inventory?: Inventory };
  /** Deletions, collection and verification; absent for a preview or a run that stopped before deleting. */
  readonly run?: RunReport;
  /** A collection an earlier run left running, as this one found it. */
  readonly collection?: CollectionReport;
  /** The collection this run left running on the host. */
  readonly pendingCommandId?: string;
  /** The host script's `recover`, run after this run's own collection was stopped by SSM. */
  readonly recovery?: Omit<HostRun, 'output'>;
}

type Draft = Omit<CleanupReport, 'startedAt' | 'durationSeconds' | 'outcome'>;

/** The longest a Lambda invocation runs: a lease taken without a deadline expires after it. */
const MAX_INVOCATION_MS = 15 * 60_000;

const nothingToDo = (reason: string): Draft => ({ nothingToDo: reason, problems: [], notes: [] });

/**
 * The one use case, for the CLI and the function alike: settle a collection an earlier run left running (when
 * the ports remember one) → plan → preview or delete → collect garbage → verify, or record the collection as
 * pending → one report. A command's status-change event settles its collection. Failures become a failed
 * report; nothing here throws.
 */
export async function cleanup(ports: EnginePorts, request: CleanupRequest): Promise<CleanupReport> {
  const started = ports.clock.now();
  const reached: { planned?: CleanupReport['planned'] } = {};
  let draft: Draft;
  try {
    draft = await dispatch(ports, request, started, reached);
  } catch (error) {
    draft = {
      problems: [describeError(error)],
      notes: [],
      ...(reached.planned ? { planned: reached.planned } : {}),
    };
  }
  return {
    startedAt: started.toISOString(),
    durationSeconds: secondsBetween(started, ports.clock.now()),
    outcome: outcomeOf(draft),
    ...draft,
  };
}

function dispatch(
  ports: EnginePorts,
  request: CleanupRequest,
  started: Date,
  reached: { planned?: CleanupReport['planned'] },
): Promise<Draft> {
  switch (request.kind) {
    case 'nothing to do':
      return Promise.resolve(nothingToDo(request.reason));
    case 'rejected':
      return Promise.resolve({ problems: request.problems, notes: [] });
    case 'cycle':
      return exclusively(ports, request, () => cycle(ports, request, started, reached));
    case 'command-status':
      return commandStatus(ports, request);
  }
}

/**
 * Runs `work` holding the run lease. When another run holds it, this one is skipped: that run settles what this
 * one would have, or the next scheduled run does.
 */
async function exclusively(
  ports: EnginePorts,
  request: { readonly requestId?: string; readonly deadline?: Date },
  work: () => Promise<Draft>,
): Promise<Draft> {
  if (!ports.lease) return work();
  const now = ports.clock.now();
  const record: LeaseRecord = {
    requestId: request.requestId ?? 'unnamed',
    acquiredAt: now.toISOString(),
    expiresAt: (request.deadline ?? new Date(now.getTime() + MAX_INVOCATION_MS)).toISOString(),
  };
  let lease: LeaseOutcome;
  try {
    lease = await ports.lease.acquire(record);
  } catch (error) {
    return { problems: [`the run could not start: ${describeError(error)}`], notes: [] };
  }
  if (!lease.acquired) {
    const holder = lease.heldBy;
    return {
      problems: [],
      notes: [],
      skipped: `another run is in progress${holder ? ` (request ${holder.requestId}, since ${holder.acquiredAt}; its lease ends by ${holder.expiresAt})` : ''}`,
    };
  }
  const took = lease.replaced
    ? [
        `took over the run lease of request ${lease.replaced.requestId}, which expired at ${lease.replaced.expiresAt} without being given back: that invocation was stopped before it finished`,
      ]
    : [];
  let draft: Draft;
  try {
    draft = await work();
  } catch (error) {
    await lease.release().catch(() => undefined);
    throw error;
  }
  try {
    await lease.release();
    return took.length > 0 ? { ...draft, notes: [...took, ...draft.notes] } : draft;
  } catch (error) {
    return {
      ...draft,
      notes: [
        ...took,
        ...draft.notes,
        `the run lease could not be given back (${describeError(error)}); it expires at ${record.expiresAt}, and runs until then are skipped`,
      ],
    };
  }
}

async function cycle(
  ports: EnginePorts,
  request: CycleRequest,
  started: Date,
  reached: { planned?: CleanupReport['planned'] },
): Promise<Draft> {
  const registry = await ports.registry();
  const params = request.host ?? {};
  const problems: string[] = [];
  const notes: string[] = [];
  let collection: CollectionReport | undefined;
  let blockedBy: string | undefined;
  if (ports.pending && ports.resume && ports.host) {
    const store = {
      registry,
      store: ports.pending,
      host: ports.host,
      resume: ports.resume,
      clock: ports.clock,
    };
    const earlier = await settlePending(store, params, 0);
    if (earlier) {
      problems.push(...earlier.problems);
      notes.push(...earlier.notes);
      collection = earlier.report;
      blockedBy = earlier.blockedBy;
    }
  }
  const found = collection ? { collection } : {};
  if (collection?.state === 'running' && params.gcMode === 'stopped') {
    return {
      ...found,
      dryRun: request.dryRun ?? false,
      problems,
      notes: [
        `${blockedBy}: the registry is stopped while it collects, so this run changed nothing; the command's status-change event or the next run finishes it`,
      ],
    };
  }

  const { pending: _pending, lease: _lease, registry: _open, ...rest } = ports;
  const cleanupPorts: CleanupPorts = { ...rest, registry };
  const planned =
    'planned' in request.plan ? { plan: request.plan.planned } : await makePlan(cleanupPorts, request.plan);
  reached.planned = planned;
  const { plan } = planned;
  if (request.dryRun) {
    const refused = cleanWouldStop(plan);
    if (refused) notes.push(`a run that deletes would stop before deleting anything: ${refused}`);
    const failed = unscanned(plan);
    if (failed.length > 0) problems.push(unscannedProblem(failed));
    return { ...found, dryRun: true, planned, problems, notes };
  }

  const turnedOff = request.collect === false;
  const collect = request.host !== undefined && !turnedOff && blockedBy === undefined;
  // What a stopped collection did not sweep is garbage only the host sees: this run collects even without deletes.
  const unswept = collection?.run?.interrupted === true;
  const run = await runCleanup(cleanupPorts, plan, {
    ...(collect ? { garbageCollection: params } : {}),
    ...(unswept || request.collectAlways ? { collectAlways: true } : {}),
    ...(!turnedOff && request.host !== undefined && blockedBy !== undefined ? { skipped: blockedBy } : {}),
  });
  problems.push(...run.problems);
  if (turnedOff) notes.push('garbage collection was turned off for this run');
  else if (blockedBy !== undefined) notes.push(`garbage collection skipped: ${blockedBy}`);

  const gc = run.garbageCollection;
  // Where commands outlive the run (SSM), one that SSM stopped killed the script before it could bring the
  // registry back; a local runner's script does that itself when stopped.
  const recovery =
    gc.ran && gc.state === 'finished' && gc.interrupted && ports.host && ports.resume
      ? await recoverAfter(
          ports.host,
          params,
          `the collection of this run${gc.commandId ? ` (command ${gc.commandId})` : ''}`,
        )
      : undefined;
  if (recovery) {
    problems.push(...recovery.problems);
    notes.push(...recovery.notes);
  }
  let pendingCommandId: string | undefined;
  if (run.verificationDeferred && gc.ran && gc.commandId !== undefined) {
    pendingCommandId = gc.commandId;
    const recorded = await recordPending(ports.pending, {
      commandId: gc.commandId,
      startedAt: started.toISOString(),
      requestId: request.requestId ?? 'unnamed',
      registry: plan.registry,
      keptTags: keptTags(plan),
    });
    if (recorded.problem) problems.push(recorded.problem);
    if (recorded.note) notes.push(recorded.note);
  }
  return {
    ...found,
    dryRun: false,
    planned,
    problems,
    notes,
    run,
    ...(pendingCommandId !== undefined ? { pendingCommandId } : {}),
    ...(recovery?.run ? { recovery: recovery.run } : {}),
  };
}

/** A command's status-change event: settles the collection it ran, once it has ended. */
async function commandStatus(ports: EnginePorts, request: CommandStatusRequest): Promise<Draft> {
  const command = `command ${request.commandId}`;
  if (RUNNING_STATUSES.has(request.status)) return nothingToDo(`${command} is ${request.status}`);
  if (request.action !== undefined && request.action !== 'collect') {
    return nothingToDo(`${command} ran the host script's ${request.action}, not a collection`);
  }
  const notWaiting = async (store: PendingCollections) =>
    (await store.read())?.commandId !== request.commandId;
  const noneWaiting = `no collection started by this function is waiting for ${command}`;
  if (ports.pending && (await notWaiting(ports.pending))) return nothingToDo(noneWaiting);
  const draft = await exclusively(ports, request, () => settleCommand(ports, request, noneWaiting));
  return draft.skipped !== undefined
    ? { ...draft, skipped: `${draft.skipped}; the next run verifies the collection of ${command}` }
    : draft;
}

async function settleCommand(
  ports: EnginePorts,
  request: CommandStatusRequest,
  noneWaiting: string,
): Promise<Draft> {
  const command = `command ${request.commandId}`;
  const { host, resume } = ports;
  if (!host || !resume) return nothingToDo(`${command} cannot be checked: no host runner resumes commands`);
  const found = (settled: Settled): Draft => ({
    ...(settled.report ? { collection: settled.report } : {}),
    problems: [...settled.problems],
    notes: [...settled.notes],
  });
  if (ports.pending) {
    const record = await ports.pending.read();
    if (record?.commandId !== request.commandId) return nothingToDo(noneWaiting);
    const registry = await ports.registry();
    const settlePorts = { registry, store: ports.pending, host, resume, clock: ports.clock };
    return found(await settle(settlePorts, request.host, record, undefined));
  }
  if (request.documentName !== undefined && request.documentName !== resume.documentName) {
    return nothingToDo(`${command} ran ${request.documentName}, not ${resume.documentName}`);
  }
  const run = await resume.resume(request.commandId);
  if (request.action !== 'collect' && run.summary?.action !== 'collect') {
    return nothingToDo(`${command} is not a collection`);
  }
  const unrecorded = { registry: () => ports.registry(), host };
  return found(await settleUnrecorded(unrecorded, request.host, request.selection, request.commandId, run));
}
