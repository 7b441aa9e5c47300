import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import type { Manifest } from '../lambda/domain/inventory.js';
import type { Digest } from '../lambda/domain/names.js';
import type { Plan } from '../lambda/domain/plan.js';
import { parseInventory, readBlobArchive } from '../lambda/host/host-storage.js';
import { LocalRunner } from '../lambda/host/local-runner.js';
import { createLimit } from '../lambda/limit.js';
import { MAX_PAGE_SIZE } from '../lambda/registry/client.js';
import { formatBytes, table } from '../lambda/report/format.js';
import { storedManifest } from '../lambda/storage/blob-content.js';
import {
  encodeJson,
  MANIFEST_ACCEPT,
  MediaTypes,
  randomGzipBlob,
  sha256Digest,
} from '../test/support/blobs.js';
import { installDockerStandIn } from '../test/support/docker-stand-in.js';
import { putManifest, uploadBlob } from '../test/support/images.js';
import { REGISTRY_BINARY, startRegistry, type TestRegistry } from '../test/support/registry.js';
import { benchPlanningScale } from './bench-planning.js';
import { bundleCli, PROJECT_ROOT } from './build.js';
import { stopOnInterrupt } from './interrupt.js';
import { type CliRun, runCli } from './run-cli.js';

const run = promisify(execFile);

const SMALL = process.env.BENCH_SCALE === 'small';
/**
 * `BENCH_ONLY=storage`: only the rows that read storage (gc --dry-run, both storage plans, host inventory);
 * `BENCH_ONLY=deletes`: only the delete rows, on a registry of their own.
 */
const ONLY = process.env.BENCH_ONLY;
if (ONLY !== undefined && ONLY !== 'storage' && ONLY !== 'deletes') {
  process.stderr.write(
    `BENCH_ONLY must be "storage", "deletes" or unset (every row), got ${JSON.stringify(ONLY)}\n`,
  );
  process.exit(2);
}
const SCALE = {
  /** 10,000 tags at full scale, and 5 untagged revisions beside every 25 tags. */
  registry: { repositories: SMALL ? 40 : 400, tags: 25, untagged: 5 },
  /** Each of the two sets of untagged revisions the delete rows remove. */
  deletes: { repositories: SMALL ? 4 : 20, revisions: 100 },
  inventory: { repositories: SMALL ? 100 : 1000, revisions: 100, tags: 10 },
};
const TARGET = {
  inventoryMs: 60_000,
  startupRatio: 3,
  /** `plan` through the API against the bare requests of the same scan. */
  apiRatio: 1.1,
  /** `plan` reading storage against the registry's own `garbage-collect --dry-run`. */
  storageRatio: 1.0,
  /** `clean` against bare DELETEs of as many manifests. */
  deleteRatio: 1.2,
  /** `clean` against bare DELETEs each followed by the HEAD that confirms it. */
  confirmedDeleteRatio: 1.2,
};
const digestOf = (seed: string): Digest => `sha256:${createHash('sha256').update(seed).digest('hex')}`;

const STARTUP_RUNS = 15;
/** Runs of each scan, taken in turn; the rows show the medians. */
const RUNS = 3;
/** Requests in flight, the command's default. */
const CONCURRENCY = 8;
const PUSH_CONCURRENCY = 16;

interface Row {
  readonly what: string;
  readonly measured: string;
  readonly target: string;
  readonly pass?: boolean;
  /** The figures behind `measured`, for bench/results.json: milliseconds, counts, ratios. */
  readonly raw?: Readonly<Record<string, number>>;
}

const rows: Row[] = [];
const log = (text: string) => process.stderr.write(`${text}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const count = (n: number) => n.toLocaleString('en-US');

interface Seeded {
  readonly manifests: number;
  readonly blobs: number;
  /** The untagged revisions, by repository. */
  readonly untagged: ReadonlyMap<string, readonly string[]>;
}

/**
 * Fills the registry through its API: per repository four small layers (the same four everywhere), then
 * `tags` tagged images, each with a config of its own (its build time an hour older per tag), and `untagged`
 * by-digest manifests that reuse those configs, each made unique by an annotation.
 */
async function fillRegistry(
  reg: TestRegistry,
  names: readonly string[],
  shape: { readonly tags: number; readonly untagged: number },
): Promise<Seeded> {
  const limit = createLimit(PUSH_CONCURRENCY);
  const layers = Array.from({ length: 4 }, () => randomGzipBlob(2048));
  const builtAt = Date.now();
  const configs = (name: string) =>
    Array.from({ length: shape.tags }, (_, i) =>
      encodeJson({
        architecture: 'amd64',
        os: 'linux',
        created: new Date(builtAt - i * 3_600_000).toISOString(),
        config: { Labels: { 'org.opencontainers.image.title': `${name}#${i}` } },
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    );
  const uploaded = await Promise.all(
    names.map(async (name) => {
      const layerDigests = await Promise.all(
        layers.map((layer) => limit(() => uploadBlob(reg, name, layer, { fresh: true }))),
      );
      const bodies = configs(name);
      const configDigests = await Promise.all(
        bodies.map((body) => limit(() => uploadBlob(reg, name, body, { fresh: true }))),
      );
      return {
        layerDigests,
        configs: bodies.map((body, i) => ({ size: body.length, digest: configDigests[i] })),
      };
    }),
  );
  let done = 0;
  const total = names.length * (shape.tags + shape.untagged);
  const untagged = new Map<string, string[]>();
  await Promise.all(
    names.flatMap((name, r) =>
      Array.from({ length: shape.tags + shape.untagged }, (_, i) =>
        limit(async () => {
          const blobs = uploaded[r];
          const config = blobs?.configs[i % shape.tags];
          if (!blobs || !config?.digest) throw new Error(`no blobs for ${name}`);
          const chosen = [i % 4, (i + 1) % 4].map((k) => ({
            mediaType: MediaTypes.ociLayerGzip,
            digest: blobs.layerDigests[k] ?? '',
            size: 2048,
          }));
          const body = encodeJson({
            schemaVersion: 2,
            mediaType: MediaTypes.ociManifest,
            config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
            layers: chosen,
            annotations: { 'org.opencontainers.image.revision': `${name}#${i}` },
          });
          const digest = sha256Digest(body);
          await putManifest(reg, name, i < shape.tags ? `1.${i}` : digest, MediaTypes.ociManifest, body);
          if (i >= shape.tags) untagged.set(name, [...(untagged.get(name) ?? []), digest]);
          done += 1;
          if (done % 2000 === 0) log(`registry: ${count(done)}/${count(total)} manifests pushed`);
        }),
      ),
    ),
  );
  return { manifests: total, blobs: names.length * (layers.length + shape.tags), untagged };
}

/** What a bare client sent and got: requests by kind. */
interface FloorCounts {
  readonly requests: number;
  readonly manifestGets: number;
  readonly configGets: number;
}

/** A keep-alive pool and a limit of `concurrency` requests in flight, as the command has. */
function bareClient(url: string, concurrency: number) {
  const agent = new Agent({ connections: concurrency });
  const limit = createLimit(concurrency);
  let requests = 0;
  const send = (method: 'GET' | 'HEAD' | 'DELETE', path: string, accept?: string) =>
    limit(async () => {
      requests += 1;
      const res = await request(`${url}${path}`, {
        method,
        dispatcher: agent,
        ...(accept ? { headers: { accept } } : {}),
      });
      const body = Buffer.from(await res.body.arrayBuffer());
      const expected = { GET: 200, HEAD: 404, DELETE: 202 }[method];
      if (res.statusCode !== expected) throw new Error(`${method} ${path} answered ${res.statusCode}`);
      return { body, headers: res.headers };
    });
  return { send, requests: () => requests, close: () => agent.close() };
}

/**
 * The fewest requests a scan that ranks images by build time can make, sent with bare undici: the catalog,
 * each repository's tags, one manifest GET per tag and per manifest a manifest reaches (children, subject),
 * and one GET per distinct config. No parsing beyond what finds the next request, no checks, no plan.
 */
async function apiScanFloor(url: string, concurrency: number): Promise<FloorCounts> {
  const client = bareClient(url, concurrency);
  let manifestGets = 0;
  let configGets = 0;
  try {
    const names: string[] = [];
    for (let page: string | undefined = `/v2/_catalog?n=${MAX_PAGE_SIZE}`; page; ) {
      const { body, headers } = await client.send('GET', page);
      names.push(...((JSON.parse(body.toString()) as { repositories?: string[] }).repositories ?? []));
      page = /<([^>]+)>;\s*rel="next"/.exec(String(headers.link ?? ''))?.[1];
    }
    const configs = new Set<string>();
    await Promise.all(
      names.map(async (name) => {
        const seen = new Set<string>();
        const visit = async (reference: string): Promise<void> => {
          manifestGets += 1;
          const { body, headers } = await client.send(
            'GET',
            `/v2/${name}/manifests/${reference}`,
            MANIFEST_ACCEPT,
          );
          const digest = String(headers['docker-content-digest']);
          if (seen.has(digest)) return;
          seen.add(digest);
          const manifest = JSON.parse(body.toString()) as {
            config?: { digest: string };
            manifests?: { digest: string }[];
            subject?: { digest: string };
          };
          const config = manifest.config?.digest;
          const fetches: Promise<unknown>[] = [];
          if (config && !configs.has(config)) {
            configs.add(config);
            configGets += 1;
            fetches.push(client.send('GET', `/v2/${name}/blobs/${config}`));
          }
          for (const next of [
            ...(manifest.manifests ?? []),
            ...(manifest.subject ? [manifest.subject] : []),
          ]) {
            if (!seen.has(next.digest)) fetches.push(visit(next.digest));
          }
          await Promise.all(fetches);
        };
        const { body } = await client.send('GET', `/v2/${name}/tags/list`);
        const tags = (JSON.parse(body.toString()) as { tags: string[] | null }).tags ?? [];
        await Promise.all(tags.map((tag) => visit(tag)));
      }),
    );
    return { requests: client.requests(), manifestGets, configGets };
  } finally {
    await client.close();
  }
}

/**
 * The bare DELETE by digest of every revision given, at `concurrency` requests in flight; with `confirm`,
 * each DELETE followed by a HEAD by digest that must answer 404.
 */
async function deleteFloor(
  url: string,
  revisions: ReadonlyMap<string, readonly string[]>,
  concurrency: number,
  confirm: boolean,
) {
  const client = bareClient(url, concurrency);
  try {
    await Promise.all(
      [...revisions].flatMap(([name, digests]) =>
        digests.map(async (digest) => {
          const path = `/v2/${name}/manifests/${digest}`;
          await client.send('DELETE', path);
          if (confirm) await client.send('HEAD', path, MANIFEST_ACCEPT);
        }),
      ),
    );
  } finally {
    await client.close();
  }
}

/** The requests a `--verbose` run logged, by kind. */
interface LoggedRequests {
  readonly total: number;
  readonly manifestGets: number;
  readonly blobGets: number;
  /** GETs of a URL already fetched in the same run. */
  readonly repeatedGets: number;
}

const REQUEST_LINE = /^http: ([A-Z]+) (\S+) /;

function loggedRequests(stderr: string): LoggedRequests {
  let total = 0;
  let manifestGets = 0;
  let blobGets = 0;
  let repeatedGets = 0;
  const fetched = new Set<string>();
  for (const line of stderr.split('\n')) {
    const [, method, url] = REQUEST_LINE.exec(line) ?? [];
    if (!method || !url) continue;
    total += 1;
    if (method !== 'GET') continue;
    const path = new URL(url).pathname;
    if (path.includes('/manifests/')) manifestGets += 1;
    if (/\/blobs\/sha256:/.test(path)) blobGets += 1;
    if (fetched.has(url)) repeatedGets += 1;
    fetched.add(url);
  }
  return { total, manifestGets, blobGets, repeatedGets };
}

interface Timed<T> {
  readonly ms: number;
  readonly result: T;
}

async function timed<T>(work: () => Promise<T>): Promise<Timed<T>> {
  const startedAt = performance.now();
  const result = await work();
  return { ms: performance.now() - startedAt, result };
}

/** Runs the bundled command; a non-zero exit is an error carrying the end of its stderr. */
async function command(bundle: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<CliRun> {
  const result = await runCli(args, { script: bundle, ...(env ? { env } : {}) });
  if (result.code !== 0) {
    throw new Error(
      `registry-janitor ${args[0]} exited ${result.code}: ${result.stderr.trim().slice(-2000)}`,
    );
  }
  return result;
}

/** A plan's manifests (kept and deleted), checked against what was pushed. */
function planned(result: CliRun, expected: { manifests: number; repositories: number }, label: string): void {
  const { totals } = JSON.parse(result.stdout) as Plan;
  const seen = totals.manifestsKept + totals.manifestsDeleted;
  if (seen !== expected.manifests || totals.repositories !== expected.repositories) {
    throw new Error(
      `${label} saw ${seen} manifests in ${totals.repositories} repositories, expected ${expected.manifests} in ${expected.repositories}`,
    );
  }
}

const ratio = (ms: number, base: number) => `${seconds(ms)} (${(ms / base).toFixed(2)}×)`;

/**
 * The scan side by side on one seeded registry: the bare request floor of an API scan against `plan`
 * through the API, and `plan` reading storage (directly, and through the host script) against the
 * registry's own `garbage-collect --dry-run` over the same storage. Each is run RUNS times, in turn, and
 * the medians compared; one more `--verbose` run of each plan counts its requests.
 */
/** A plan that reads storage: its time against `gc --dry-run`, and the manifest and config GETs it sent. */
function storageRows(what: string, ms: number, gcMs: number, counted: LoggedRequests): Row[] {
  const gets = counted.manifestGets + counted.blobGets;
  return [
    {
      what,
      measured: ratio(ms, gcMs),
      target: `≤ ${TARGET.storageRatio}× gc --dry-run`,
      pass: ms <= TARGET.storageRatio * gcMs,
      raw: { ms, ratioToGc: ms / gcMs },
    },
    {
      what: '  its manifest and config GETs; all requests',
      measured: `${gets}; ${count(counted.total)}`,
      target: '0; -',
      pass: gets === 0,
      raw: { ...counted },
    },
  ];
}

async function benchScan(reg: TestRegistry, bundle: string): Promise<void> {
  const { repositories, tags, untagged } = SCALE.registry;
  const names = Array.from({ length: repositories }, (_, r) => `bench/group-${r % 20}/app-${r}`);
  log(`registry: pushing ${count(repositories)} repositories × (${tags} tags + ${untagged} untagged)…`);
  const setup = await timed(() => fillRegistry(reg, names, SCALE.registry));
  const filled = setup.result;
  log(`registry: pushed in ${seconds(setup.ms)}`);
  rows.push({
    what: `registry setup: ${count(filled.manifests)} manifests (${count(repositories * tags)} tags) over ${count(filled.blobs)} blobs pushed`,
    measured: seconds(setup.ms),
    target: '-',
    raw: { ms: setup.ms, manifests: filled.manifests, tags: repositories * tags, blobs: filled.blobs },
  });

  const docker = await installDockerStandIn(reg);
  try {
    const common = [
      'plan',
      '--registry',
      reg.url,
      '--keep-last',
      '10',
      '--concurrency',
      String(CONCURRENCY),
      '--json',
    ];
    const everything = { manifests: filled.manifests, repositories };
    const tagged = { manifests: repositories * tags, repositories };
    const variants = {
      api: { args: common, env: undefined, expected: tagged },
      storageRoot: { args: [...common, '--storage-root', reg.root], env: undefined, expected: everything },
      fromHost: { args: [...common, '--storage-from-host'], env: docker.env, expected: everything },
    } as const;
    const times = {
      floor: [] as number[],
      api: [] as number[],
      storageRoot: [] as number[],
      fromHost: [] as number[],
      gc: [] as number[],
    };
    let floor: FloorCounts | undefined;
    for (let n = 1; n <= RUNS; n += 1) {
      log(
        `scan: run ${n} of ${RUNS}: request floor, plan (API), gc --dry-run, plan --storage-root, plan --storage-from-host…`,
      );
      if (ONLY !== 'storage') {
        const bare = await timed(() => apiScanFloor(reg.url, CONCURRENCY));
        floor = bare.result;
        times.floor.push(bare.ms);
        log(`scan: floor ${seconds(bare.ms)}`);
      }
      for (const key of ['api', 'storageRoot', 'fromHost'] as const) {
        const { args, env, expected } = variants[key];
        if (key !== 'api' || ONLY !== 'storage') {
          const run = await timed(() => command(bundle, args, env));
          planned(run.result, expected, `plan (${key})`);
          times[key].push(run.ms);
          log(`scan: plan (${key}) ${seconds(run.ms)}`);
        }
        if (key === 'api') {
          const gc = await timed(() => garbageCollectDryRun(reg));
          times.gc.push(gc.ms);
          log(`scan: gc --dry-run ${seconds(gc.ms)}`);
        }
      }
    }
    if (!floor && ONLY !== 'storage') throw new Error('no run');
    const counted = {
      api:
        ONLY === 'storage'
          ? undefined
          : loggedRequests((await command(bundle, [...variants.api.args, '--verbose'])).stderr),
      storageRoot: loggedRequests(
        (await command(bundle, [...variants.storageRoot.args, '--verbose'])).stderr,
      ),
      fromHost: loggedRequests(
        (await command(bundle, [...variants.fromHost.args, '--verbose'], docker.env)).stderr,
      ),
    };
    const m = {
      floor: median(times.floor),
      api: median(times.api),
      storageRoot: median(times.storageRoot),
      fromHost: median(times.fromHost),
      gc: median(times.gc),
    };
    const medians = `median of ${RUNS}`;
    if (floor && counted.api) {
      rows.push(
        {
          what: `scan floor: bare undici, ${count(floor.requests)} requests (${count(floor.manifestGets)} manifest, ${count(floor.configGets)} config GETs), concurrency ${CONCURRENCY} (${medians})`,
          measured: seconds(m.floor),
          target: '-',
          raw: { ms: m.floor, runs: times.floor.length, ...floor },
        },
        {
          what: `plan, API only: ${count(repositories)} repositories, ${count(tagged.manifests)} manifests (${medians})`,
          measured: ratio(m.api, m.floor),
          target: `≤ ${TARGET.apiRatio}× floor`,
          pass: m.api <= TARGET.apiRatio * m.floor,
          raw: { ms: m.api, ratioToFloor: m.api / m.floor, runs: times.api.length },
        },
        {
          what: '  its requests: all, manifest GETs, config GETs, URLs fetched twice',
          measured: `${count(counted.api.total)}, ${count(counted.api.manifestGets)}, ${count(counted.api.blobGets)}, ${counted.api.repeatedGets}`,
          target: `floor's ${count(floor.manifestGets)}, ${count(floor.configGets)}; 0 twice`,
          pass:
            counted.api.manifestGets <= floor.manifestGets &&
            counted.api.blobGets <= floor.configGets &&
            counted.api.repeatedGets === 0,
          raw: { ...counted.api },
        },
      );
    }
    rows.push(
      {
        what: `gc --dry-run (docker-registry garbage-collect): ${count(filled.manifests)} manifests (${medians})`,
        measured: seconds(m.gc),
        target: '-',
        raw: { ms: m.gc },
      },
      ...storageRows(
        `plan --storage-root: ${count(filled.manifests)} manifests (${medians})`,
        m.storageRoot,
        m.gc,
        counted.storageRoot,
      ),
      ...storageRows(
        `plan --storage-from-host (docker exec): ${count(filled.manifests)} manifests (${medians})`,
        m.fromHost,
        m.gc,
        counted.fromHost,
      ),
    );
  } finally {
    await docker.close();
  }
}

/** `docker-registry garbage-collect --dry-run` over the registry's storage, its output thrown away. */
async function garbageCollectDryRun(reg: TestRegistry): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(REGISTRY_BINARY, ['garbage-collect', '--dry-run', reg.configPath], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`garbage-collect --dry-run exited ${code}: ${stderr}`)),
    );
  });
}

/**
 * Deletes per second, `RUNS` times in turn, each on freshly pushed untagged revisions of the same shape: bare
 * DELETEs by digest; bare DELETEs each followed by the HEAD by digest that confirms it; and `clean --plan`,
 * which also re-resolves each repository's tags before deleting and verifies the kept tags after.
 */
async function benchDeletes(reg: TestRegistry, bundle: string): Promise<void> {
  const { repositories, revisions } = SCALE.deletes;
  const total = repositories * revisions;
  const set = (kind: string) => Array.from({ length: repositories }, (_, r) => `bench-delete/${kind}-${r}`);
  const shape = { tags: 1, untagged: revisions };
  const scratch = await mkdtemp(join(tmpdir(), 'registry-janitor-bench-clean-'));
  const floors: number[] = [];
  const confirmed: number[] = [];
  const cleans: number[] = [];
  try {
    for (let run = 1; run <= RUNS; run += 1) {
      log(`deletes, run ${run}/${RUNS}: pushing three sets of ${count(total)} untagged revisions…`);
      const bare = await fillRegistry(reg, set(`floor${run}`), shape);
      const paired = await fillRegistry(reg, set(`confirmed${run}`), shape);
      await fillRegistry(reg, set(`clean${run}`), shape);
      const savedPlan = join(scratch, `plan-${run}.json`);
      const plan = await command(bundle, [
        'plan',
        '--registry',
        reg.url,
        '--repo',
        `bench-delete/clean${run}-*`,
        '--storage-root',
        reg.root,
        '--untagged-only',
        '--untagged-grace',
        '0',
        '--json',
      ]);
      await writeFile(savedPlan, plan.stdout);
      const toDelete = (JSON.parse(plan.stdout) as Plan).totals.manifestsDeleted;
      if (toDelete !== total)
        throw new Error(`the plan deletes ${toDelete} manifests, pushed ${total} untagged`);

      log(`deletes, run ${run}/${RUNS}: bare DELETEs, DELETEs with their HEADs, clean --plan…`);
      floors.push((await timed(() => deleteFloor(reg.url, bare.untagged, CONCURRENCY, false))).ms);
      confirmed.push((await timed(() => deleteFloor(reg.url, paired.untagged, CONCURRENCY, true))).ms);
      const clean = await timed(() =>
        command(bundle, [
          'clean',
          '--plan',
          savedPlan,
          '--yes',
          '--json',
          '--concurrency',
          String(CONCURRENCY),
        ]),
      );
      const { report } = JSON.parse(clean.result.stdout) as {
        report: { outcome: string; deletions: { deleted: unknown[] } };
      };
      const deleted = report.deletions.deleted.length;
      if (report.outcome !== 'succeeded' || deleted !== total) {
        throw new Error(`clean ${report.outcome}, deleted ${deleted} of ${total}`);
      }
      cleans.push(clean.ms);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const floor = median(floors);
  const pair = median(confirmed);
  const clean = median(cleans);
  const perSecond = (ms: number) => `${count(Math.round(total / (ms / 1000)))}/s`;
  rows.push(
    {
      what: `delete floor: ${count(total)} bare DELETEs by digest, concurrency ${CONCURRENCY} (median of ${RUNS})`,
      measured: `${seconds(floor)} (${perSecond(floor)})`,
      target: '-',
      raw: { ms: floor, deletes: total, perSecond: total / (floor / 1000) },
    },
    {
      what: `confirmed delete floor: ${count(total)} bare DELETEs, each then its HEAD (median of ${RUNS})`,
      measured: `${seconds(pair)} (${perSecond(pair)})`,
      target: '-',
      raw: { ms: pair, deletes: total, perSecond: total / (pair / 1000), ratioToFloor: pair / floor },
    },
    {
      what: `clean --plan: ${count(total)} untagged revisions deleted and checked, CLI wall clock (median of ${RUNS})`,
      measured: `${ratio(clean, floor)} (${perSecond(clean)})`,
      target: `≤ ${TARGET.deleteRatio}× floor`,
      pass: clean <= TARGET.deleteRatio * floor,
      raw: {
        ms: clean,
        deletes: total,
        perSecond: total / (clean / 1000),
        ratioToFloor: clean / floor,
        ratioToConfirmedFloor: clean / pair,
      },
    },
    {
      what: '  against the confirmed delete floor',
      measured: `${(clean / pair).toFixed(2)}×`,
      target: `≤ ${TARGET.confirmedDeleteRatio}× confirmed floor`,
      pass: clean <= TARGET.confirmedDeleteRatio * pair,
    },
  );
}

/** The scan and delete rows, on one registry started for them. */
async function benchRegistry(bundle: string): Promise<void> {
  const reg = await startRegistry();
  const undoInterrupt = stopOnInterrupt(reg);
  try {
    if (ONLY !== 'deletes') await benchScan(reg, bundle);
    if (ONLY !== 'storage') await benchDeletes(reg, bundle);
  } finally {
    undoInterrupt();
    await reg.stop();
  }
}

const median = (values: readonly number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

async function timeProcess(args: readonly string[]): Promise<number> {
  const startedAt = performance.now();
  await run(process.execPath, [...args]);
  return performance.now() - startedAt;
}

/** The packaged command's start: `registry-janitor --version` from the bundle against a bare `node -e 0`. */
async function benchStartup(bundle: string): Promise<void> {
  log(`start-up: ${STARTUP_RUNS} runs each of node -e 0 and the bundle's --version, alternating…`);
  const bare: number[] = [];
  const command: number[] = [];
  for (let n = 0; n < STARTUP_RUNS; n += 1) {
    bare.push(await timeProcess(['-e', '0']));
    command.push(await timeProcess([bundle, '--version']));
  }
  const ratio = median(command) / median(bare);
  rows.push(
    {
      what: 'start-up: node -e 0 (median)',
      measured: seconds(median(bare)),
      target: '-',
      raw: { ms: median(bare), runs: bare.length },
    },
    {
      what: 'start-up: registry-janitor --version, bundle (median)',
      measured: `${seconds(median(command))} (${ratio.toFixed(1)}×)`,
      raw: { ms: median(command), runs: command.length, ratio },
      target: `< ${TARGET.startupRatio}× node -e 0`,
      pass: ratio < TARGET.startupRatio,
    },
  );
}

/**
 * The host script's inventory over 100,000 revisions: the storage layout is written straight to disk (link
 * files, and each revision's manifest as its blob), then `inventory` runs through the local runner with the
 * docker stand-in, and its output is parsed as the scan would, manifests included.
 */
async function benchInventory(): Promise<void> {
  const { repositories, revisions, tags } = SCALE.inventory;
  const total = repositories * revisions;
  log(`inventory: writing ${count(total)} revision links into a storage root…`);
  const reg = await startRegistry();
  const undoInterrupt = stopOnInterrupt(reg);
  const docker = await installDockerStandIn(reg);
  const scratch = await mkdtemp(join(tmpdir(), 'registry-janitor-bench-host-'));
  try {
    const root = join(reg.root, 'docker', 'registry', 'v2', 'repositories');
    const limit = createLimit(64);
    const writes: Promise<void>[] = [];
    const blobs = join(reg.root, 'docker', 'registry', 'v2', 'blobs', 'sha256');
    const config = { mediaType: MediaTypes.ociConfig, digest: digestOf('config'), size: 2 };
    for (let r = 0; r < repositories; r += 1) {
      const manifests = join(root, `team-${r % 10}`, `service-${r}`, '_manifests');
      for (let v = 0; v < revisions; v += 1) {
        const body = encodeJson({
          schemaVersion: 2,
          mediaType: MediaTypes.ociManifest,
          config,
          layers: [],
          annotations: { 'org.opencontainers.image.revision': `${r}:${v}` },
        });
        const hex = sha256Digest(body).slice('sha256:'.length);
        writes.push(
          limit(async () => {
            const blob = join(blobs, hex.slice(0, 2), hex);
            await mkdir(blob, { recursive: true });
            await writeFile(join(blob, 'data'), body);
            const dir = join(manifests, 'revisions', 'sha256', hex);
            await mkdir(dir, { recursive: true });
            await writeFile(join(dir, 'link'), `sha256:${hex}`);
            if (v < tags) {
              const tagDir = join(manifests, 'tags', `v${v}`, 'current');
              await mkdir(tagDir, { recursive: true });
              await writeFile(join(tagDir, 'link'), `sha256:${hex}`);
            }
          }),
        );
      }
    }
    await Promise.all(writes);

    log('inventory: running the host script…');
    const runner = new LocalRunner({ env: docker.env });
    const startedAt = performance.now();
    const run = await runner.run('inventory', {
      lockFile: join(scratch, 'lock'),
      logDir: join(scratch, 'logs'),
    });
    const inventory = parseInventory(run.output ?? '');
    const listed = inventory.repositories;
    const manifests = new Map<Digest, Manifest>();
    for (const [digest, body] of await readBlobArchive(inventory.archive)) {
      if (typeof body !== 'number') manifests.set(digest, storedManifest(digest, body));
    }
    const elapsed = performance.now() - startedAt;
    let seen = 0;
    for (const repository of listed.values()) seen += repository.revisions.length;
    if (
      run.summary?.status !== 'done' ||
      seen !== total ||
      listed.size !== repositories ||
      manifests.size !== total
    ) {
      throw new Error(
        `inventory listed ${seen} revisions and ${manifests.size} manifests in ${listed.size} repositories, wrote ${total} in ${repositories}: ${run.summary?.reason ?? run.reason ?? ''}`,
      );
    }
    rows.push(
      {
        what: `host inventory (script + parse): ${count(repositories)} repositories, ${count(total)} revisions and manifests`,
        measured: seconds(elapsed),
        raw: { ms: elapsed, repositories, revisions: total },
        target: `< ${seconds(TARGET.inventoryMs)}`,
        pass: elapsed < TARGET.inventoryMs,
      },
      {
        what: '  its output, through SSM only with an output bucket',
        measured: formatBytes(Buffer.byteLength(run.output ?? '')),
        raw: { bytes: Buffer.byteLength(run.output ?? '') },
        target: '-',
      },
    );
  } finally {
    undoInterrupt();
    await docker.close();
    await reg.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * bench/results.json (results-small.json for the small scale, results-deletes.json for the delete rows
 * alone): the machine, the scale, every row.
 */
async function writeResults(totalMs: number): Promise<string> {
  const dir = join(PROJECT_ROOT, 'bench');
  const file = join(dir, `results${SMALL ? '-small' : ''}${ONLY ? `-${ONLY}` : ''}.json`);
  await mkdir(dir, { recursive: true });
  const processors = cpus();
  const results = {
    date: new Date().toISOString(),
    machine: {
      cpu: processors[0]?.model.trim() ?? 'unknown',
      cores: availableParallelism(),
      memoryBytes: totalmem(),
      os: `${process.platform} ${release()}`,
    },
    node: process.version,
    scale: { name: SMALL ? 'small' : 'full', ...SCALE, runs: RUNS, concurrency: CONCURRENCY },
    totalMs,
    rows,
  };
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  return file;
}

async function main(): Promise<number> {
  const startedAt = performance.now();
  log(`bench (${SMALL ? 'small' : 'full'} scale; BENCH_SCALE=small for a quick run)`);
  if (ONLY === undefined) rows.push(...(await benchPlanningScale({ small: SMALL, log })));
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-bench-'));
  try {
    const bundle = join(dir, 'registry-janitor.mjs');
    await bundleCli('esm', bundle);
    if (ONLY === undefined) await benchStartup(bundle);
    await benchRegistry(bundle);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (ONLY !== 'deletes') await benchInventory();
  const lines = table([
    ['BENCHMARK', 'MEASURED', 'TARGET', 'RESULT'],
    ...rows.map((row) => [
      row.what,
      row.measured,
      row.target,
      row.pass === undefined ? '' : row.pass ? 'ok' : 'MISSED',
    ]),
  ]);
  const totalMs = performance.now() - startedAt;
  process.stdout.write(`\n${lines.join('\n')}\n\nTotal ${seconds(totalMs)}\n`);
  const written = await writeResults(totalMs);
  process.stdout.write(`Figures written to ${written}\n`);
  const missed = rows.filter((row) => row.pass === false);
  if (missed.length > 0) {
    process.stdout.write(`Missed ${missed.length} target${missed.length === 1 ? '' : 's'}.\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
