import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makePlan, type RunReport, runCleanup, STILL_SERVED } from '../lambda/cleanup.js';
import type { Plan } from '../lambda/domain/plan.js';
import { buildPolicy } from '../lambda/domain/policy.js';
import { createRegistryClient } from '../lambda/registry/client.js';
import { FilesystemStorage } from '../lambda/storage/filesystem.js';
import { parsePlan, runCli } from './cli-runner.js';
import { type FaultProxy, type FaultRule, startFaultProxy } from './support/fault-proxy.js';
import { pushImage, pushIndex } from './support/images.js';
import { type AuthMode, startRegistry, type TestRegistry } from './support/registry.js';
import { backdate, manifestLinks, storageRoot } from './support/storage.js';

/** A manifest DELETE, not the one checkDeletes sends for a digest nobody has. */
const MANIFEST_DELETE = /\/manifests\/sha256:(?!0{64})/;
const POLICY_ARGS = ['--keep-last', '1', '--untagged-grace', '1h'];
const STACK_TRACE = /\n\s+at /;

/**
 * Three repositories with something stale in each: two old tags and an untagged revision in web/app, an old
 * index with its two children in multi/base, an old tag in api/svc.
 */
async function pushFixture(reg: TestRegistry): Promise<void> {
  const untagged = await pushImage(reg, 'web/app', 'new', {});
  await backdate(reg, 'web/app', untagged.digest, 5);
  for (const [tag, days] of [
    ['older', 20],
    ['old', 10],
  ] as const) {
    const image = await pushImage(reg, 'web/app', tag, {});
    await backdate(reg, 'web/app', image.digest, days, tag);
  }
  await pushImage(reg, 'web/app', 'new', {});
  for (const [tag, days] of [
    ['1.0', 30],
    ['2.0', 0],
  ] as const) {
    const children = [
      await pushImage(reg, 'multi/base', undefined, { platform: { os: 'linux', architecture: 'amd64' } }),
      await pushImage(reg, 'multi/base', undefined, { platform: { os: 'linux', architecture: 'arm64' } }),
    ];
    const index = await pushIndex(reg, 'multi/base', tag, children);
    if (days > 0) {
      for (const digest of [index.digest, ...children.map((child) => child.digest)])
        await backdate(reg, 'multi/base', digest, days);
      await backdate(reg, 'multi/base', index.digest, days, tag);
    }
  }
  const old = await pushImage(reg, 'api/svc', 'old', {});
  await backdate(reg, 'api/svc', old.digest, 10, 'old');
  await pushImage(reg, 'api/svc', 'new', {});
}

/** A registry serving a copy of the fixture's storage, push times included. */
async function registryWithFixture(fixture: TestRegistry, auth: AuthMode = 'none'): Promise<TestRegistry> {
  const reg = await startRegistry({ auth });
  await cp(fixture.root, reg.root, { recursive: true, preserveTimestamps: true });
  return reg;
}

/** Empty repositories the registry lists, as it keeps listing a repository whose images were all deleted. */
async function addEmptyRepositories(reg: TestRegistry, count: number): Promise<void> {
  for (let n = 0; n < count; n += 1) {
    const repository = join(storageRoot(reg), 'repositories', 'empty', `r${String(n).padStart(4, '0')}`);
    await mkdir(join(repository, '_manifests'), { recursive: true });
    await mkdir(join(repository, '_layers'), { recursive: true });
  }
}

/** Every manifest revision in storage, as `repository@digest`. */
async function revisions(reg: TestRegistry): Promise<Set<string>> {
  const found = new Set<string>();
  for (const link of await manifestLinks(reg)) {
    const match = /^(.+)\/_manifests\/revisions\/sha256\/([a-f0-9]{64})\/link$/.exec(link);
    if (match) found.add(`${match[1]}@sha256:${match[2]}`);
  }
  return found;
}

/** Each deletion unit of a repository, as its `repository@digest` steps. */
const units = (repository: Plan['repositories'][number]) =>
  repository.deletions.map((unit) => unit.steps.map((step) => `${repository.name}@${step.digest}`));
const planUnits = (plan: Plan) => plan.repositories.flatMap(units);

const minus = (a: Set<string>, b: Set<string>) => new Set([...a].filter((item) => !b.has(item)));

interface Outcome {
  readonly code: number;
  readonly stderr: string;
  readonly stdout: string;
  /** The plan and report of a clean that got as far as deleting. */
  readonly plan?: Plan;
  readonly report?: RunReport;
  /** Manifests the registry no longer has, as `repository@digest`. */
  readonly lost: Set<string>;
}

type Expected =
  /** Exit 0 and exactly the fault-free plan's deletions. */
  | { readonly completes: true }
  /** Exit 1 with this on stderr; when a deletion failed, with this error. */
  | { readonly fails: RegExp; readonly failedDeletion?: RegExp };

/**
 * What holds whatever the fault: nothing outside the fault-free plan was deleted; the report claims no
 * deletion the registry did not lose, and hides none it did; every planned deletion not made belongs to a
 * repository the run reported as unscanned or to a unit with a failed deletion, or the run stopped before
 * deleting anything.
 */
function assessRun(outcome: Outcome, faultFree: Plan, expected: Expected): void {
  const planned = new Set(planUnits(faultFree).flat());
  for (const output of [outcome.stdout, outcome.stderr]) expect(output).not.toMatch(STACK_TRACE);
  expect(minus(outcome.lost, planned)).toEqual(new Set());
  const deletions = outcome.report?.deletions;
  if (deletions) {
    const reported = new Set(deletions.deleted.map((d) => `${d.repository}@${d.digest}`));
    const failed = new Set(deletions.failed.map((d) => `${d.repository}@${d.digest}`));
    expect(minus(reported, outcome.lost)).toEqual(new Set());
    expect(minus(outcome.lost, new Set([...reported, ...failed]))).toEqual(new Set());
    const unscanned = new Set(outcome.plan?.repositories.filter((r) => r.error).map((r) => r.name));
    const unaccounted = planUnits(faultFree).filter(
      (unit) =>
        unit.some((step) => !outcome.lost.has(step)) &&
        !unit.some((step) => failed.has(step) || unscanned.has(step.split('@')[0] ?? '')),
    );
    expect(unaccounted).toEqual([]);
  } else {
    expect(outcome.lost).toEqual(new Set());
  }
  if ('completes' in expected) {
    expect({ code: outcome.code, stderr: outcome.stderr }).toEqual({ code: 0, stderr: '' });
    expect(outcome.lost).toEqual(planned);
    return;
  }
  expect(outcome.code).toBe(1);
  expect(outcome.stderr).toMatch(expected.fails);
  if (expected.failedDeletion)
    expect(deletions?.failed.map((f) => f.error)).toContainEqual(
      expect.stringMatching(expected.failedDeletion),
    );
}

interface FaultCase {
  readonly name: string;
  /** The rules of the proxy in front of the registry; `elsewhere` is a second origin in front of it. */
  readonly rules: (elsewhere: string) => FaultRule[];
  readonly expected: Expected;
  /**
   * Runs without --storage-root: tags and manifests read through the API, untagged revisions unseen, config
   * blobs read for build times. With it the scan reads manifests from storage.
   */
  readonly withoutStorage?: true;
  readonly auth?: AuthMode;
  readonly args?: readonly string[];
  readonly prepare?: (reg: TestRegistry) => Promise<void>;
}

const CASES: readonly FaultCase[] = [
  {
    name: 'a burst of 503 answers with Retry-After: 0 and of 502 answers without it',
    rules: () => [
      {
        method: 'GET',
        path: /\/manifests\//,
        times: 3,
        fault: { kind: 'status', status: 503, headers: { 'retry-after': '0' } },
      },
      { method: 'GET', path: /\/tags\/list/, times: 2, fault: { kind: 'status', status: 502 } },
    ],
    expected: { completes: true },
  },
  {
    name: 'deletes throttled with 429 and Retry-After: 1',
    rules: () => [
      {
        method: 'DELETE',
        path: MANIFEST_DELETE,
        times: 2,
        fault: { kind: 'status', status: 429, headers: { 'retry-after': '1' } },
      },
    ],
    expected: { completes: true },
  },
  {
    name: 'a 500 to reading a manifest, which is not retried',
    rules: () => [
      { method: 'GET', path: /^\/v2\/api\/svc\/manifests\//, fault: { kind: 'status', status: 500 } },
    ],
    withoutStorage: true,
    expected: {
      fails:
        /^error: repository api\/svc could not be scanned and is left alone: GET \/v2\/api\/svc\/manifests\/\S+ answered 500$/m,
    },
  },
  {
    name: 'a connection reset before the headers',
    rules: () => [{ method: 'GET', path: /\/manifests\//, fault: { kind: 'reset' } }],
    expected: { completes: true },
  },
  {
    name: 'a connection reset after half of a manifest',
    rules: () => [{ method: 'GET', path: /\/manifests\//, fault: { kind: 'reset-mid-body' } }],
    expected: { completes: true },
  },
  {
    name: 'a connection reset after half of a config blob',
    rules: () => [{ method: 'GET', path: /\/blobs\//, fault: { kind: 'reset-mid-body' } }],
    withoutStorage: true,
    expected: { completes: true },
  },
  {
    name: 'a tag list cut short of its Content-Length, twice',
    // The first read may be the storage check's, which leaves a repository it cannot read to the scan.
    rules: () => [
      { method: 'GET', path: /^\/v2\/web\/app\/tags\/list/, times: 2, fault: { kind: 'truncate' } },
    ],
    expected: { completes: true },
  },
  {
    name: 'a catalog cut short of its Content-Length',
    rules: () => [{ method: 'GET', path: /^\/v2\/_catalog/, fault: { kind: 'truncate' } }],
    expected: { completes: true },
  },
  {
    name: 'a catalog request that stalls past --timeout',
    rules: () => [{ method: 'GET', path: /^\/v2\/_catalog/, fault: { kind: 'stall' } }],
    args: ['--timeout', '1s'],
    expected: {
      fails:
        /^error: GET http:\/\/127\.0\.0\.1:\d+\/v2\/_catalog\?n=1000 was cancelled: the deadline passed$/m,
    },
  },
  {
    name: 'a tag list that is not JSON',
    rules: () => [
      { method: 'GET', path: /^\/v2\/api\/svc\/tags\/list/, times: Infinity, fault: { kind: 'malformed' } },
    ],
    withoutStorage: true,
    expected: {
      fails:
        /^error: repository api\/svc could not be scanned and is left alone: GET \/v2\/api\/svc\/tags\/list did not answer JSON$/m,
    },
  },
  {
    name: 'a manifest whose Docker-Content-Digest is of other content',
    rules: () => [
      {
        method: 'GET',
        path: /^\/v2\/api\/svc\/manifests\//,
        times: Infinity,
        fault: { kind: 'wrong-digest' },
      },
    ],
    withoutStorage: true,
    expected: {
      fails:
        /^error: repository api\/svc could not be scanned and is left alone: manifest api\/svc@\S+: expected digest sha256:[0-9a-f]{64}, but the content hashes to sha256:[0-9a-f]{64}$/m,
    },
  },
  {
    name: 'a catalog whose next-page link loops',
    rules: () => [{ method: 'GET', path: /^\/v2\/_catalog/, times: Infinity, fault: { kind: 'loop-link' } }],
    expected: {
      fails:
        /^error: GET \/v2\/_catalog\?n=1000: the next-page link does not advance .*; stopped to avoid looping$/m,
    },
  },
  {
    name: 'a catalog of 400 more repositories in pages of 10',
    rules: () => [
      { method: 'GET', path: /^\/v2\/_catalog/, times: Infinity, fault: { kind: 'small-pages', size: 10 } },
    ],
    prepare: (reg) => addEmptyRepositories(reg, 400),
    expected: { completes: true },
  },
  {
    name: 'blobs redirected to another origin, which must not get the credentials',
    rules: (elsewhere) => [
      { path: /\/blobs\//, times: Infinity, fault: { kind: 'redirect', origin: elsewhere } },
    ],
    auth: 'basic',
    expected: { completes: true },
  },
  {
    name: 'a DELETE answered 500',
    rules: () => [{ method: 'DELETE', path: MANIFEST_DELETE, fault: { kind: 'status', status: 500 } }],
    expected: { fails: /^error: 1 deletions failed$/m, failedDeletion: /^DELETE \/v2\/\S+ answered 500$/ },
  },
  {
    name: 'a DELETE the registry carried out, answered 500',
    rules: () => [
      { method: 'DELETE', path: MANIFEST_DELETE, fault: { kind: 'status', status: 500, forward: true } },
    ],
    expected: { fails: /^error: 1 deletions failed$/m, failedDeletion: /^DELETE \/v2\/\S+ answered 500$/ },
  },
  {
    name: 'a DELETE answered 202 that the registry never got',
    rules: () => [{ method: 'DELETE', path: MANIFEST_DELETE, fault: { kind: 'status', status: 202 } }],
    expected: { fails: /^error: 1 deletions failed$/m, failedDeletion: new RegExp(`^${STILL_SERVED}$`) },
  },
  {
    name: 'a DELETE the registry carried out, its answer lost to a reset',
    rules: () => [{ method: 'DELETE', path: MANIFEST_DELETE, fault: { kind: 'reset', forward: true } }],
    expected: { completes: true },
  },
];

let fixture: TestRegistry;
/** The fault-free plans of the fixture, with its storage root and without. */
let withStorage: Plan;
let withoutStorage: Plan;

beforeAll(async () => {
  fixture = await startRegistry();
  await pushFixture(fixture);
  const plan = (args: readonly string[]) =>
    runCli(['plan', '--registry', fixture.url, ...args, ...POLICY_ARGS, '--json']).then(parsePlan);
  withStorage = await plan(['--storage-root', fixture.root]);
  withoutStorage = await plan([]);
});

afterAll(async () => {
  await fixture?.stop();
});

describe('plan and clean through a proxy that injects faults in front of a real registry', () => {
  let reg: TestRegistry | undefined;
  const proxies: FaultProxy[] = [];
  afterEach(async () => {
    await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
    await reg?.stop();
  });

  it('the fault-free plan deletes in every repository of the fixture', () => {
    expect(withStorage.repositories.map((r) => [r.name, units(r).flat().length])).toEqual([
      ['api/svc', 1],
      ['multi/base', 3],
      ['web/app', 3],
    ]);
  });

  it.each(CASES)('$name', async (fault) => {
    // Prepare
    reg = await registryWithFixture(fixture, fault.auth);
    await fault.prepare?.(reg);
    const credentials = reg.credentials;
    const env = credentials
      ? { REGISTRY_USERNAME: credentials.username, REGISTRY_PASSWORD: credentials.password }
      : {};
    const args = [...(fault.withoutStorage ? [] : ['--storage-root', reg.root]), ...POLICY_ARGS];
    const faultFree = fault.withoutStorage ? withoutStorage : withStorage;
    const elsewhere = await startFaultProxy(reg.url, [], {
      ...(credentials
        ? {
            authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`,
          }
        : {}),
    });
    const proxy = await startFaultProxy(reg.url, fault.rules(elsewhere.url));
    proxies.push(elsewhere, proxy);
    const before = await revisions(reg);

    // Act
    const result = await runCli(
      ['clean', '--registry', proxy.url, ...args, ...(fault.args ?? []), '--yes', '--json'],
      { env },
    );

    // Assess
    const lost = minus(before, await revisions(reg));
    const parsed = result.stdout
      ? (JSON.parse(result.stdout) as { plan: Plan; report?: RunReport })
      : undefined;
    expect(proxy.requests.filter((request) => request.fault)).not.toEqual([]);
    const redirected = proxy.requests.filter((request) => request.fault === 'redirect');
    expect(elsewhere.requests.length > 0).toBe(redirected.length > 0);
    expect(redirected.every((request) => request.authorization?.startsWith('Basic '))).toBe(true);
    expect(elsewhere.requests.filter((request) => request.authorization !== undefined)).toEqual([]);
    assessRun({ ...result, ...parsed, lost }, faultFree, fault.expected);
  });
});

describe('a request that stalls past the request timeout', () => {
  let reg: TestRegistry | undefined;
  let proxy: FaultProxy | undefined;
  afterEach(async () => {
    await proxy?.close();
    await reg?.stop();
  });

  it('is sent again, and the run deletes what the fault-free plan does', async () => {
    // Prepare
    reg = await registryWithFixture(fixture);
    proxy = await startFaultProxy(reg.url, [
      { method: 'GET', path: /\/manifests\//, fault: { kind: 'stall' } },
      { method: 'DELETE', path: MANIFEST_DELETE, fault: { kind: 'stall' } },
    ]);
    const registry = createRegistryClient({
      url: proxy.url,
      concurrency: 4,
      requestTimeoutMs: 300,
      retryMinDelayMs: 1,
    });
    const ports = {
      registry,
      storage: new FilesystemStorage(reg.root),
      clock: { now: () => new Date() },
    };
    const before = await revisions(reg);

    // Act
    const { plan } = await makePlan(ports, {
      include: [],
      exclude: [],
      policy: buildPolicy(undefined, { keepLast: 1, untaggedGrace: '1h' }, 'policy'),
    });
    const report = await runCleanup(ports, plan, {});
    await registry.close();

    // Assess
    const lost = minus(before, await revisions(reg));
    expect(
      proxy.requests
        .filter((request) => request.fault)
        .map((request) => request.method)
        .sort(),
    ).toEqual(['DELETE', 'GET']);
    expect(report.problems).toEqual([]);
    assessRun({ code: 0, stdout: '', stderr: '', plan, report, lost }, withStorage, { completes: true });
  });
});
