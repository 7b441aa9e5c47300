import { ENV, type FunctionConfig } from './aws/environment.js';
import type { FunctionEvent } from './aws/events.js';
import {
  type CleanupPorts,
  type CollectionCheck,
  checkCollection,
  keptTags,
  makePlan,
  type PlannedRun,
  type RunReport,
  runCleanup,
} from './cleanup.js';
import { cleanWouldStop, type Plan, type PlanTotals } from './domain/plan.js';
import { buildPolicy, type Policy, type RuleInput } from './domain/policy.js';
import type { Reclaim } from './domain/reclaim.js';
import { repositoryFilter } from './domain/selection.js';
import { errorCode } from './error-message.js';
import { createLimit } from './limit.js';
import type {
  Clock,
  HostCommands,
  HostRun,
  HostRunner,
  LeaseOutcome,
  LeaseRecord,
  Metrics,
  Notifier,
  PendingCollection,
  PendingCollections,
  Registry,
  RunArchive,
  RunDetails,
  RunLease,
  StorageLister,
} from './ports.js';
import { formatBytes, plural } from './report/format.js';
import type {
  CollectionReport,
  Figures,
  FunctionOutcome,
  FunctionReport,
  PlanPreview,
} from './report/function.js';
import { currentTags, type TagToVerify, type Verification } from './verify.js';

export interface FunctionPorts {
  /** The registry's API, with credentials fetched on first use. */
  registry(): Promise<Registry>;
  /** Untagged manifests and push times; on the registry host through the host script. */
  readonly storage?: StorageLister;
  readonly host: HostCommands;
  readonly pending?: PendingCollections;
  /** Taken before a run touches the registry or the host; a run that cannot take it is skipped. */
  readonly lease?: RunLease;
  readonly clock: Clock;
  /** Told each plan the function makes, with the inventory it was made from. */
  readonly onPlan?: (planned: PlannedRun) => void;
}

export interface FunctionRequest {
  readonly config: FunctionConfig;
  readonly event: FunctionEvent;
  readonly requestId: string;
  /** When the invocation ends at the latest; a run lease it takes expires then. */
  readonly deadline?: Date;
}

/** The longest a Lambda invocation runs: a lease taken without a deadline expires after it. */
const MAX_INVOCATION_MS = 15 * 60_000;

/** A collection still "running" after this long never reported back (SSM's longest execution timeout is 48 h). */
export const MAX_COLLECTION_MS = 50 * 3_600_000;

const RUNNING_STATUSES: ReadonlySet<string> = new Set(['Pending', 'InProgress', 'Delayed', 'Cancelling']);

type Draft = Omit<FunctionReport, 'outcome' | 'headline' | 'durationSeconds' | 'figures'> & {
  readonly nothingToDo?: string;
  /** Why the run did not start: another one holds the lease. */
  readonly skipped?: string;
};

/** Errors of this project carry a stable `code` and a message that says what to fix; others get their name. */
function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return errorCode(error)?.startsWith('RJ_') ? error.message : `${error.name}: ${error.message}`;
}

/**
 * The function's use case: from a validated event to a report. Scheduled and on-demand runs and the disk alarm
 * run the whole cycle (first settling a collection an earlier run left running); an SSM status-change event
 * settles that collection. Failures become a failed report; nothing here throws.
 */
export async function runFunction(ports: FunctionPorts, request: FunctionRequest): Promise<FunctionReport> {
  const started = ports.clock.now();
  const base: Draft = {
    requestId: request.requestId,
    trigger: request.event,
    registry: request.config.registryUrl,
    startedAt: started.toISOString(),
    problems: [],
    notes: [],
  };
  let draft: Draft;
  try {
    draft = await dispatch(ports, request, base);
  } catch (error) {
    draft = { ...base, problems: [describeError(error)] };
  }
  return finish(draft, ports.clock.now());
}

async function dispatch(ports: FunctionPorts, request: FunctionRequest, base: Draft): Promise<Draft> {
  const { config, event } = request;
  const configured = {
    include: config.repositories,
    exclude: config.excludeRepositories,
    dryRun: config.dryRun,
    gc: true,
    ...(config.maxDelete !== undefined ? { maxDelete: config.maxDelete } : {}),
  };
  switch (event.kind) {
    case 'schedule':
      return exclusively(ports, request, base, () =>
        cycle(ports, request, base, { ...configured, policy: config.policy, policyName: 'configured' }),
      );
    case 'manual': {
      const { dryRun, gc, repositories, excludeRepositories, maxDelete, ...rule } = event.overrides;
      const overridden = Object.keys(rule).length > 0;
      const cap = maxDelete ?? config.maxDelete;
      const options: CycleOptions = {
        ...(cap !== undefined ? { maxDelete: cap } : {}),
        include: repositories ?? config.repositories,
        exclude: excludeRepositories ?? config.excludeRepositories,
        dryRun: dryRun ?? config.dryRun,
        gc: gc ?? true,
        policy: overridden
          ? buildPolicy(config.policyDocument, rule as RuleInput, ENV.policy)
          : config.policy,
        policyName: overridden ? 'configured with overrides' : 'configured',
      };
      return exclusively(ports, request, base, () => cycle(ports, request, base, options));
    }
    case 'alarm':
      if (config.diskAlarmName !== undefined && event.alarmName !== config.diskAlarmName) {
        return {
          ...base,
          nothingToDo: `alarm ${event.alarmName} is not the disk alarm ${config.diskAlarmName}`,
        };
      }
      if (event.state !== 'ALARM') {
        return { ...base, nothingToDo: `alarm ${event.alarmName} is ${event.state}` };
      }
      return exclusively(ports, request, base, () =>
        cycle(ports, request, base, {
          ...configured,
          policy: config.emergencyPolicy ?? config.policy,
          policyName: config.emergencyPolicy ? 'emergency' : 'configured',
        }),
      );
    case 'command-status':
      return onCommandStatus(ports, request, base, event);
  }
}

/**
 * Runs `work` holding the run lease. When another invocation holds it, this one is skipped: that run settles
 * what this one would have, or the next scheduled run does.
 */
async function exclusively(
  ports: FunctionPorts,
  request: FunctionRequest,
  base: Draft,
  work: () => Promise<Draft>,
): Promise<Draft> {
  if (!ports.lease) return work();
  const now = ports.clock.now();
  const record: LeaseRecord = {
    requestId: request.requestId,
    acquiredAt: now.toISOString(),
    expiresAt: (request.deadline ?? new Date(now.getTime() + MAX_INVOCATION_MS)).toISOString(),
  };
  let lease: LeaseOutcome;
  try {
    lease = await ports.lease.acquire(record);
  } catch (error) {
    return { ...base, problems: [`the run could not start: ${describeError(error)}`] };
  }
  if (!lease.acquired) {
    const holder = lease.heldBy;
    return {
      ...base,
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

interface CycleOptions {
  readonly policy: Policy;
  readonly policyName: NonNullable<FunctionReport['policy']>;
  readonly dryRun: boolean;
  readonly gc: boolean;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
  readonly maxDelete?: number;
}

async function cycle(
  ports: FunctionPorts,
  request: FunctionRequest,
  base: Draft,
  options: CycleOptions,
): Promise<Draft> {
  const { config } = request;
  const registry = await ports.registry();
  const problems: string[] = [];
  const notes: string[] = [];
  let collection: CollectionReport | undefined;
  let collectionBlockedBy: string | undefined;

  if (ports.pending) {
    const earlier = await settleEarlier(ports, ports.pending, registry, config, 0);
    if (earlier) {
      problems.push(...earlier.problems);
      notes.push(...(earlier.notes ?? []));
      collection = earlier.report;
      collectionBlockedBy = earlier.blockedBy;
    }
  }
  const shared = { ...base, policy: options.policyName, dryRun: options.dryRun };
  if (collection?.state === 'running' && config.host.gcMode === 'stopped') {
    return {
      ...shared,
      ...(collection ? { collection } : {}),
      problems,
      notes: [
        `${collectionBlockedBy}: the registry is stopped while it collects, so this run changed nothing; the command's status-change event or the next run finishes it`,
      ],
    };
  }

  const cleanupPorts: CleanupPorts = {
    registry,
    clock: ports.clock,
    host: startingCollections(ports.host),
    ...(ports.storage ? { storage: ports.storage } : {}),
  };
  const planned = await makePlan(cleanupPorts, {
    include: options.include,
    exclude: options.exclude,
    policy: options.policy,
    ...(options.maxDelete !== undefined
      ? { maxDelete: { limit: options.maxDelete, setting: 'maxDelete' } }
      : {}),
  });
  ports.onPlan?.(planned);
  const { plan } = planned;
  if (options.dryRun) {
    const refused = cleanWouldStop(plan);
    if (refused) notes.push(`a run that deletes would stop before deleting anything: ${refused}`);
    const preview = planPreview(plan);
    if (preview.failedRepositories.length > 0) {
      problems.push(`${plural(preview.failedRepositories.length, 'repository')} could not be scanned`);
    }
    return { ...shared, ...(collection ? { collection } : {}), problems, notes, plan: preview };
  }

  const collect = options.gc && collectionBlockedBy === undefined;
  // What a stopped collection did not sweep is garbage only the host sees: this run collects even without deletes.
  const unswept = collection?.run?.interrupted === true;
  const cleanup = await runCleanup(cleanupPorts, plan, {
    deferVerificationWhileCollecting: true,
    ...(collect ? { garbageCollection: config.host } : {}),
    ...(unswept ? { collectAlways: true } : {}),
  });
  problems.push(...cleanup.problems);
  if (!options.gc) notes.push('garbage collection was turned off for this run');
  else if (collectionBlockedBy !== undefined)
    notes.push(`garbage collection skipped: ${collectionBlockedBy}`);

  let pendingCommandId: string | undefined;
  const gc = cleanup.garbageCollection;
  const recovery =
    gc.ran && gc.state === 'finished' && gc.interrupted
      ? await recoverAfter(
          ports,
          config,
          `the collection of this run${gc.commandId ? ` (command ${gc.commandId})` : ''}`,
        )
      : undefined;
  if (recovery) {
    problems.push(...recovery.problems);
    notes.push(...recovery.notes);
  }
  if (gc.ran && gc.state === 'running' && gc.commandId !== undefined) {
    pendingCommandId = gc.commandId;
    const recorded = await recordPending(ports.pending, {
      commandId: gc.commandId,
      startedAt: base.startedAt,
      requestId: base.requestId,
      registry: config.registryUrl,
      keptTags: keptTags(plan),
    });
    if (recorded.problem) problems.push(recorded.problem);
    if (recorded.note) notes.push(recorded.note);
  }
  return {
    ...shared,
    ...(collection ? { collection } : {}),
    problems,
    notes,
    cleanup,
    ...(pendingCommandId !== undefined ? { pendingCommandId } : {}),
    ...(recovery?.run ? { recovery: recovery.run } : {}),
  };
}

/** A collection that cannot start (SendCommand refused) is a failed collection: the deletions done stay reported. */
function startingCollections(host: HostCommands): HostRunner {
  return {
    run: async (action, params) => {
      try {
        return await host.run(action, params);
      } catch (error) {
        if (action !== 'collect') throw error;
        return { state: 'finished', reason: `it could not be started: ${describeError(error)}` };
      }
    },
  };
}

async function recordPending(
  store: PendingCollections | undefined,
  record: PendingCollection,
): Promise<{ note?: string; problem?: string }> {
  const running = `garbage collection is still running on the host (command ${record.commandId})`;
  if (!store) {
    return {
      note: `${running}; with no output bucket to remember it, its status-change event verifies every tag when it ends`,
    };
  }
  try {
    await store.write(record);
    return {
      note: `${running}; its status-change event, or the next run, verifies the kept images when it ends`,
    };
  } catch (error) {
    return { problem: `${running} and could not be recorded for verification: ${describeError(error)}` };
  }
}

interface Settled {
  readonly report?: CollectionReport;
  readonly problems: readonly string[];
  readonly notes?: readonly string[];
  /** Why no new collection may start now. */
  readonly blockedBy?: string;
}

async function settleEarlier(
  ports: FunctionPorts,
  store: PendingCollections,
  registry: Registry,
  config: FunctionConfig,
  waitMs: number | undefined,
): Promise<Settled | undefined> {
  let record: PendingCollection | undefined;
  try {
    record = await store.read();
  } catch (error) {
    const problem = `the record of an unfinished collection could not be read: ${describeError(error)}`;
    return {
      problems: [problem],
      blockedBy: 'the record of an unfinished collection could not be read',
    };
  }
  return record ? settle(ports, store, registry, config, record, waitMs) : undefined;
}

/** Checks a recorded collection; once it has ended, verifies the tags it recorded and forgets it. */
async function settle(
  ports: FunctionPorts,
  store: PendingCollections,
  registry: Registry,
  config: FunctionConfig,
  record: PendingCollection,
  waitMs: number | undefined,
): Promise<Settled> {
  const which = `the collection started ${record.startedAt} (command ${record.commandId})`;
  const known = { commandId: record.commandId, startedAt: record.startedAt };
  const forget = async (): Promise<string[]> => {
    try {
      await store.write(undefined);
      return [];
    } catch (error) {
      return [`${which} was settled but its record could not be removed: ${describeError(error)}`];
    }
  };
  let run: HostRun;
  try {
    run = await ports.host.resume(record.commandId, waitMs);
  } catch (error) {
    const problem = `${which} could not be checked: ${describeError(error)}`;
    if (errorCode(error) === 'RJ_SSM_UNKNOWN_COMMAND') {
      return { report: { ...known, state: 'unknown' }, problems: [problem, ...(await forget())] };
    }
    return {
      report: { ...known, state: 'unknown' },
      problems: [problem],
      blockedBy: `${which} could not be checked`,
    };
  }
  const { output: _, ...shown } = run;
  if (run.state === 'running') {
    if (ports.clock.now().getTime() - Date.parse(record.startedAt) > MAX_COLLECTION_MS) {
      return {
        report: { ...known, state: 'unknown', run: shown },
        problems: [`${which} never reported an end; its kept images were not verified`, ...(await forget())],
      };
    }
    return {
      report: { ...known, state: 'running', run: shown },
      problems: [],
      blockedBy: `${which} is still running`,
    };
  }
  const recovery = run.interrupted ? await recoverAfter(ports, config, which) : undefined;
  const { present, removed } = await stillListed(registry, record.keptTags);
  const check = await checkCollection(registry, run, present);
  return {
    report: {
      ...collectionReport(known, shown, check, removed),
      ...(recovery?.run ? { recovery: recovery.run } : {}),
    },
    problems: [...check.problems, ...(recovery?.problems ?? []), ...(await forget())],
    notes: recovery?.notes ?? [],
  };
}

interface Recovery {
  readonly run?: Omit<HostRun, 'output'>;
  readonly problems: readonly string[];
  readonly notes: readonly string[];
}

/**
 * After a collection that SSM stopped (execution timeout or cancel), which killed the host script before it
 * reported: the script's detached watchdog normally brought the registry back already. The host script's `recover`
 * makes sure of it (a watchdog killed too, a failed start) before anything is verified.
 */
async function recoverAfter(ports: FunctionPorts, config: FunctionConfig, which: string): Promise<Recovery> {
  const interrupted = `${which} was stopped by SSM before it finished`;
  let run: HostRun;
  try {
    run = await ports.host.run('recover', config.host);
  } catch (error) {
    return {
      problems: [`${interrupted}, and recover could not be started on the host: ${describeError(error)}`],
      notes: [],
    };
  }
  const { output: _, ...shown } = run;
  const summary = run.summary?.action === 'recover' ? run.summary : undefined;
  if (run.state === 'finished' && summary && summary.status !== 'failed') {
    const said = summary.reason ?? summary.status;
    return {
      run: shown,
      problems: [],
      notes: [
        summary.status === 'done'
          ? `${interrupted}; recover: ${said}`
          : `${interrupted}; recover found nothing to do: ${said}`,
      ],
    };
  }
  const reason =
    summary?.reason ??
    run.reason ??
    (run.state === 'running' ? 'it is still running on the host' : 'it printed no summary');
  return {
    run: shown,
    problems: [`${interrupted}, and recover failed, so the registry may not be serving: ${reason}`],
    notes: [],
  };
}

function collectionReport(
  known: { commandId: string; startedAt?: string },
  run: Omit<HostRun, 'output'>,
  check: CollectionCheck,
  removed: number,
): CollectionReport {
  return {
    ...known,
    state: 'finished',
    run,
    verification: check.verification,
    ...(check.measuredBytes !== undefined ? { measuredBytes: check.measuredBytes } : {}),
    ...(removed > 0 ? { tagsRemovedSince: removed } : {}),
  };
}

/** The recorded tags the registry still lists; a tag removed since is not a broken image. */
async function stillListed(
  registry: Registry,
  tags: readonly TagToVerify[],
): Promise<{ present: TagToVerify[]; removed: number }> {
  const limit = createLimit(registry.concurrency);
  const repositories = [...new Set(tags.map((t) => t.repository))];
  const listed = new Map<string, Set<string> | undefined>();
  await Promise.all(
    repositories.map(async (repository) => {
      try {
        listed.set(repository, new Set(await limit(() => registry.listTags(repository))));
      } catch {
        // Unlisted: every recorded tag is verified, and verification says what is wrong.
        listed.set(repository, undefined);
      }
    }),
  );
  const present = tags.filter((t) => listed.get(t.repository)?.has(t.tag) ?? true);
  return { present, removed: tags.length - present.length };
}

async function onCommandStatus(
  ports: FunctionPorts,
  request: FunctionRequest,
  base: Draft,
  event: Extract<FunctionEvent, { kind: 'command-status' }>,
): Promise<Draft> {
  const command = `command ${event.commandId}`;
  if (RUNNING_STATUSES.has(event.status)) return { ...base, nothingToDo: `${command} is ${event.status}` };
  if (event.action !== undefined && event.action !== 'collect') {
    return { ...base, nothingToDo: `${command} ran the host script's ${event.action}, not a collection` };
  }
  if (ports.pending) {
    const record = await ports.pending.read();
    if (record?.commandId !== event.commandId) {
      return { ...base, nothingToDo: `no collection started by this function is waiting for ${command}` };
    }
  }
  const draft = await exclusively(ports, request, base, () => settleFromEvent(ports, request, base, event));
  return draft.skipped !== undefined
    ? { ...draft, skipped: `${draft.skipped}; the next run verifies the collection of ${command}` }
    : draft;
}

async function settleFromEvent(
  ports: FunctionPorts,
  request: FunctionRequest,
  base: Draft,
  event: Extract<FunctionEvent, { kind: 'command-status' }>,
): Promise<Draft> {
  const { config } = request;
  const command = `command ${event.commandId}`;
  if (ports.pending) {
    const record = await ports.pending.read();
    if (record?.commandId !== event.commandId) {
      return { ...base, nothingToDo: `no collection started by this function is waiting for ${command}` };
    }
    const registry = await ports.registry();
    const settled = await settle(ports, ports.pending, registry, config, record, undefined);
    return {
      ...base,
      ...(settled.report ? { collection: settled.report } : {}),
      problems: [...settled.problems],
      notes: [...(settled.notes ?? [])],
    };
  }

  if (event.documentName !== undefined && event.documentName !== ports.host.documentName) {
    return { ...base, nothingToDo: `${command} ran ${event.documentName}, not ${ports.host.documentName}` };
  }
  const run = await ports.host.resume(event.commandId);
  if (event.action !== 'collect' && run.summary?.action !== 'collect') {
    return { ...base, nothingToDo: `${command} is not a collection` };
  }
  const { output: _, ...shown } = run;
  if (run.state === 'running') {
    return { ...base, collection: { commandId: event.commandId, state: 'running', run: shown } };
  }
  const recovery = run.interrupted ? await recoverAfter(ports, config, command) : undefined;
  const registry = await ports.registry();
  const repositories = (await registry.listRepositories()).filter(
    repositoryFilter(config.repositories, config.excludeRepositories),
  );
  const tags = await currentTags(registry, repositories, createLimit(registry.concurrency));
  const check = await checkCollection(registry, run, tags);
  return {
    ...base,
    collection: {
      ...collectionReport({ commandId: event.commandId }, shown, check, 0),
      ...(recovery?.run ? { recovery: recovery.run } : {}),
    },
    problems: [...check.problems, ...(recovery?.problems ?? [])],
    notes: [
      ...(recovery?.notes ?? []),
      'no output bucket records the kept tags, so every tag of the selected repositories was verified',
    ],
  };
}

function planPreview(plan: Plan): PlanPreview {
  return {
    totals: plan.totals,
    ...(plan.maxDelete ? { maxDelete: plan.maxDelete.limit } : {}),
    reclaim: plan.reclaim,
    failedRepositories: plan.repositories.filter((r) => r.error !== undefined).map((r) => r.name),
    deletions: plan.repositories
      .filter((r) => r.deletions.length > 0)
      .map((r) => ({
        repository: r.name,
        tags: r.tags.filter((t) => t.decision === 'delete').map((t) => t.tag),
        manifests: r.deletions.reduce((sum, unit) => sum + unit.steps.length, 0),
      })),
  };
}

const summaryNumber = (run: Omit<HostRun, 'output'> | undefined, field: string): number | undefined => {
  const value = run?.summary?.[field];
  return typeof value === 'number' ? value : undefined;
};

function figures(draft: Draft): Figures {
  const cleanup = draft.cleanup;
  const manifestsDeleted = cleanup?.deletions.deleted.filter((d) => d.outcome === 'deleted').length ?? 0;
  const measured = [cleanup?.reclaimed.measuredBytes, draft.collection?.measuredBytes].filter(
    (n): n is number => n !== undefined,
  );
  const ownRun = cleanup?.garbageCollection.ran ? cleanup.garbageCollection : undefined;
  const disk = (field: string) => summaryNumber(ownRun, field) ?? summaryNumber(draft.collection?.run, field);
  const before = disk('diskUsedPercentBefore');
  const after = disk('diskUsedPercentAfter');
  const estimated = cleanup?.reclaimed.estimatedBytes ?? draft.plan?.reclaim.bytes;
  const verifications = [cleanup?.verification, draft.collection?.verification].filter(
    (v): v is Verification => v !== undefined,
  );
  const unverified = verifications.reduce((sum, v) => sum + v.unverified.length, 0);
  return {
    manifestsDeleted,
    ...(measured.length > 0 ? { bytesReclaimed: measured.reduce((a, b) => a + b, 0) } : {}),
    ...(estimated !== undefined ? { bytesEstimated: estimated } : {}),
    ...(before !== undefined ? { diskUsedPercentBefore: before } : {}),
    ...(after !== undefined ? { diskUsedPercentAfter: after } : {}),
    tagsVerified: verifications.reduce((sum, v) => sum + v.tags, 0) - unverified,
    ...(unverified > 0 ? { tagsUnverified: unverified } : {}),
    integrityFailures: verifications.reduce((sum, v) => sum + v.broken.length, 0),
  };
}

function outcomeOf(draft: Draft): FunctionOutcome {
  if (draft.nothingToDo !== undefined || draft.skipped !== undefined) return 'nothing to do';
  if (draft.problems.length > 0) return 'failed';
  if (draft.pendingCommandId !== undefined || draft.collection?.state === 'running') return 'pending';
  return 'succeeded';
}

function headline(draft: Draft, outcome: FunctionOutcome, numbers: Figures): string {
  if (draft.skipped !== undefined) return `skipped: ${draft.skipped}`;
  if (outcome === 'nothing to do') return `nothing to do: ${draft.nothingToDo}`;
  if (outcome === 'failed') {
    const broken = numbers.integrityFailures;
    const unverified = numbers.tagsUnverified ?? 0;
    if (broken > 0) return `FAILED - ${plural(broken, 'kept image')} broken`;
    if (unverified > 0) {
      return `FAILED - ${unverified} of ${plural(numbers.tagsVerified + unverified, 'kept tag')} not verified before the deadline`;
    }
    return `FAILED - ${draft.problems[0] ?? 'see the report'}`;
  }
  const deleted = plural(numbers.manifestsDeleted, 'manifest');
  if (draft.plan) {
    const reclaim = draft.plan.reclaim;
    return `dry run: would delete ${plural(draft.plan.totals.manifestsDeleted, 'manifest')}, freeing ${reclaim.exact ? '' : 'at most '}${formatBytes(reclaim.bytes)}`;
  }
  if (outcome === 'pending') {
    return `${numbers.manifestsDeleted > 0 ? `deleted ${deleted}; ` : ''}garbage collection still running`;
  }
  const freed = numbers.bytesReclaimed;
  if (draft.trigger.kind === 'command-status') {
    return `garbage collection finished: freed ${formatBytes(freed ?? 0)}, ${plural(numbers.tagsVerified, 'kept tag')} verified`;
  }
  if (freed !== undefined && freed > 0) return `freed ${formatBytes(freed)}, deleted ${deleted}`;
  if (numbers.manifestsDeleted > 0) {
    return `deleted ${deleted}; ${formatBytes(numbers.bytesEstimated ?? 0)} frees at the next garbage collection`;
  }
  return 'nothing to delete';
}

function finish(draft: Draft, finished: Date): FunctionReport {
  const { nothingToDo, skipped, requestId, trigger, registry, startedAt, problems, notes, ...details } =
    draft;
  const figuresOf = figures(draft);
  const outcome = outcomeOf(draft);
  return {
    requestId,
    trigger,
    outcome,
    headline: headline(draft, outcome, figuresOf),
    ...(registry !== undefined ? { registry } : {}),
    startedAt,
    durationSeconds: Math.round((finished.getTime() - Date.parse(startedAt)) / 100) / 10,
    figures: figuresOf,
    problems,
    notes: [
      ...(skipped !== undefined ? [`skipped: ${skipped}`] : []),
      ...(nothingToDo !== undefined ? [nothingToDo] : []),
      ...notes,
      ...hostWarnings(draft),
    ],
    ...details,
  };
}

/** What the host script warned of (no restart, a Redis blob cache to flush): a person has to act on it. */
function hostWarnings(draft: Draft): string[] {
  const gc = draft.cleanup?.garbageCollection;
  const summaries = [
    gc?.ran ? gc.summary : undefined,
    draft.recovery?.summary,
    draft.collection?.run?.summary,
    draft.collection?.recovery?.summary,
  ];
  return summaries.flatMap((summary) =>
    typeof summary?.warning === 'string' ? [`garbage collection: ${summary.warning}`] : [],
  );
}

/** The report of an invocation that could not start: the configuration is wrong. */
export function configurationFailure(input: {
  readonly requestId: string;
  readonly event: FunctionEvent;
  readonly problems: readonly string[];
  readonly registry?: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
}): FunctionReport {
  const problems = input.problems.map((problem) => `configuration: ${problem}`);
  const report = finish(
    {
      requestId: input.requestId,
      trigger: input.event,
      ...(input.registry !== undefined ? { registry: input.registry } : {}),
      startedAt: input.startedAt.toISOString(),
      problems,
      notes: ['fix the function’s environment variables (the stack sets them) and run it again'],
    },
    input.finishedAt,
  );
  return { ...report, headline: `FAILED - misconfigured: ${input.problems[0] ?? 'see the report'}` };
}

export interface FunctionOutputs {
  readonly archive?: RunArchive;
  readonly notifier?: Notifier;
  readonly metrics: Metrics;
}

function withProblem(report: FunctionReport, problem: string): FunctionReport {
  const problems = [...report.problems, problem];
  const failed = report.outcome === 'failed';
  return {
    ...report,
    problems,
    outcome: 'failed',
    headline: failed ? report.headline : `FAILED - ${problem}`,
  };
}

/**
 * Saves the report, sends the notification and publishes the metrics. A report that has nothing to say (an
 * alarm back to OK, another command's status change) only publishes metrics. A failed delivery fails the run.
 */
export async function publishReport(
  outputs: FunctionOutputs,
  report: FunctionReport,
  details?: RunDetails,
): Promise<FunctionReport> {
  let final = report;
  if (report.outcome !== 'nothing to do') {
    if (outputs.archive) {
      try {
        const saved = await outputs.archive.save(final, details);
        final = {
          ...final,
          historyLocation: saved.report,
          ...(saved.page !== undefined ? { reportPage: saved.page } : {}),
        };
      } catch (error) {
        final = withProblem(final, `the report could not be saved: ${describeError(error)}`);
      }
    }
    if (outputs.notifier) {
      try {
        await outputs.notifier.notify(final);
      } catch (error) {
        final = withProblem(final, `the notification could not be sent: ${describeError(error)}`);
      }
    }
  }
  outputs.metrics.publish(final);
  return final;
}
