import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import type { Plan } from '../lambda/domain/plan.js';
import { parseInventory } from '../lambda/host/host-storage.js';
import { LocalRunner } from '../lambda/host/local-runner.js';
import { createLimit } from '../lambda/limit.js';
import { formatBytes, table } from '../lambda/report/format.js';
import { encodeJson, MediaTypes, randomGzipBlob, sha256Digest } from '../test/support/blobs.js';
import { installDockerStandIn } from '../test/support/docker-stand-in.js';
import { putManifest, uploadBlob } from '../test/support/images.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { benchPlanningScale } from './bench-planning.js';
import { bundleCli } from './build.js';
import { stopOnInterrupt } from './interrupt.js';
import { runCli } from './run-cli.js';

const run = promisify(execFile);

const SMALL = process.env.BENCH_SCALE === 'small';
const SCALE = {
  registry: { repositories: SMALL ? 20 : 200, tags: 25, untagged: 5, concurrency: 8 },
  inventory: { repositories: SMALL ? 100 : 1000, revisions: 100, tags: 10 },
};
const TARGET = { scanMs: 60_000, inventoryMs: 60_000, startupRatio: 3 };
const STARTUP_RUNS = 15;
const PUSH_CONCURRENCY = 16;

interface Row {
  readonly what: string;
  readonly measured: string;
  readonly target: string;
  readonly pass?: boolean;
}

const rows: Row[] = [];
const log = (text: string) => process.stderr.write(`${text}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const count = (n: number) => n.toLocaleString('en-US');

/**
 * Fills the registry through its API: per repository one config and four small layers, then `tags` tagged
 * and `untagged` by-digest manifests that reuse them, each made unique by an annotation.
 */
async function fillRegistry(reg: TestRegistry): Promise<{ manifests: number; blobs: number }> {
  const { repositories, tags, untagged } = SCALE.registry;
  const limit = createLimit(PUSH_CONCURRENCY);
  const layers = Array.from({ length: 4 }, () => randomGzipBlob(2048));
  const config = encodeJson({
    architecture: 'amd64',
    os: 'linux',
    created: new Date().toISOString(),
    rootfs: { type: 'layers', diff_ids: [] },
  });
  const names = Array.from({ length: repositories }, (_, r) => `bench/group-${r % 10}/app-${r}`);
  const descriptors = await Promise.all(
    names.map((name) =>
      limit(async () => {
        const configDigest = await uploadBlob(reg, name, config);
        const layerDigests: string[] = [];
        for (const layer of layers) layerDigests.push(await uploadBlob(reg, name, layer));
        return { configDigest, layerDigests };
      }),
    ),
  );
  let done = 0;
  const total = repositories * (tags + untagged);
  await Promise.all(
    names.flatMap((name, r) =>
      Array.from({ length: tags + untagged }, (_, i) =>
        limit(async () => {
          const blobs = descriptors[r];
          if (!blobs) throw new Error(`no blobs for ${name}`);
          const chosen = [i % 4, (i + 1) % 4].map((k) => ({
            mediaType: MediaTypes.ociLayerGzip,
            digest: blobs.layerDigests[k] ?? '',
            size: 2048,
          }));
          const body = encodeJson({
            schemaVersion: 2,
            mediaType: MediaTypes.ociManifest,
            config: { mediaType: MediaTypes.ociConfig, digest: blobs.configDigest, size: config.length },
            layers: chosen,
            annotations: { 'org.opencontainers.image.revision': `${name}#${i}` },
          });
          const reference = i < tags ? `1.${i}` : sha256Digest(body);
          await putManifest(reg, name, reference, MediaTypes.ociManifest, body);
          done += 1;
          if (done % 1000 === 0) log(`registry: ${count(done)}/${count(total)} manifests pushed`);
        }),
      ),
    ),
  );
  return { manifests: total, blobs: repositories * (1 + layers.length) };
}

async function benchScan(): Promise<void> {
  const { repositories, tags, untagged, concurrency } = SCALE.registry;
  log(
    `registry: starting, then pushing ${count(repositories)} repositories × (${tags} tags + ${untagged} untagged)…`,
  );
  const reg = await startRegistry();
  const undoInterrupt = stopOnInterrupt(reg);
  try {
    const setupStartedAt = performance.now();
    const filled = await fillRegistry(reg);
    const setup = performance.now() - setupStartedAt;
    rows.push({
      what: `registry setup: ${count(filled.manifests)} manifests over ${count(filled.blobs)} blobs pushed`,
      measured: seconds(setup),
      target: '-',
    });

    const startupStartedAt = performance.now();
    const version = await runCli(['--version']);
    if (version.code !== 0)
      throw new Error(`registry-janitor --version exited ${version.code}: ${version.stderr.trim()}`);
    const startup = performance.now() - startupStartedAt;

    log(`registry: scanning with registry-janitor plan --concurrency ${concurrency}…`);
    const scanStartedAt = performance.now();
    const result = await runCli([
      'plan',
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--keep-last',
      '10',
      '--concurrency',
      String(concurrency),
      '--json',
    ]);
    const elapsed = performance.now() - scanStartedAt;
    if (result.code !== 0)
      throw new Error(`plan exited ${result.code}: ${result.stderr.trim().slice(-2000)}`);
    const scanned = JSON.parse(result.stdout) as Plan;
    const seen = scanned.totals.manifestsKept + scanned.totals.manifestsDeleted;
    if (seen !== filled.manifests || scanned.totals.repositories !== repositories) {
      throw new Error(
        `plan saw ${seen} manifests in ${scanned.totals.repositories} repositories, ` +
          `pushed ${filled.manifests} in ${repositories}`,
      );
    }
    log(
      `registry: scanned in ${seconds(elapsed)} (${(elapsed / seen).toFixed(2)} ms per manifest), ` +
        `of which ${seconds(startup)} is starting the CLI`,
    );
    rows.push(
      {
        what: `plan scan (CLI, wall clock): ${count(repositories)} repositories, ${count(seen)} manifests, concurrency ${concurrency}`,
        measured: seconds(elapsed),
        target: `< ${seconds(TARGET.scanMs)}`,
        pass: elapsed < TARGET.scanMs,
      },
      { what: '  of which CLI start-up (--version)', measured: seconds(startup), target: '-' },
    );
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
async function benchStartup(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-bench-'));
  try {
    const bundle = join(dir, 'registry-janitor.mjs');
    await bundleCli('esm', bundle);
    log(`start-up: ${STARTUP_RUNS} runs each of node -e 0 and the bundle's --version, alternating…`);
    const bare: number[] = [];
    const command: number[] = [];
    for (let n = 0; n < STARTUP_RUNS; n += 1) {
      bare.push(await timeProcess(['-e', '0']));
      command.push(await timeProcess([bundle, '--version']));
    }
    const ratio = median(command) / median(bare);
    rows.push(
      { what: 'start-up: node -e 0 (median)', measured: seconds(median(bare)), target: '-' },
      {
        what: 'start-up: registry-janitor --version, bundle (median)',
        measured: `${seconds(median(command))} (${ratio.toFixed(1)}×)`,
        target: `< ${TARGET.startupRatio}× node -e 0`,
        pass: ratio < TARGET.startupRatio,
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The host script's inventory over 100,000 revisions: the storage layout is written straight to disk (the
 * script reads only link files and their mtimes), then `inventory` runs through the local runner with the
 * docker stand-in, and its output is parsed as the scan would.
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
    for (let r = 0; r < repositories; r += 1) {
      const manifests = join(root, `team-${r % 10}`, `service-${r}`, '_manifests');
      for (let v = 0; v < revisions; v += 1) {
        const hex = createHash('sha256').update(`${r}:${v}`).digest('hex');
        writes.push(
          limit(async () => {
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
    const listed = parseInventory(run.output ?? '').repositories;
    const elapsed = performance.now() - startedAt;
    let seen = 0;
    for (const repository of listed.values()) seen += repository.revisions.length;
    if (run.summary?.status !== 'done' || seen !== total || listed.size !== repositories) {
      throw new Error(
        `inventory listed ${seen} revisions in ${listed.size} repositories, wrote ${total} in ${repositories}: ${run.reason ?? ''}`,
      );
    }
    rows.push(
      {
        what: `host inventory (script + parse): ${count(repositories)} repositories, ${count(total)} revisions`,
        measured: seconds(elapsed),
        target: `< ${seconds(TARGET.inventoryMs)}`,
        pass: elapsed < TARGET.inventoryMs,
      },
      {
        what: '  its output, through SSM only with an output bucket',
        measured: formatBytes(Buffer.byteLength(run.output ?? '')),
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

async function main(): Promise<number> {
  const startedAt = performance.now();
  log(`bench (${SMALL ? 'small' : 'full'} scale; BENCH_SCALE=small for a quick run)`);
  rows.push(...(await benchPlanningScale({ small: SMALL, log })));
  await benchStartup();
  await benchScan();
  await benchInventory();
  const lines = table([
    ['BENCHMARK', 'MEASURED', 'TARGET', 'RESULT'],
    ...rows.map((row) => [
      row.what,
      row.measured,
      row.target,
      row.pass === undefined ? '' : row.pass ? 'ok' : 'MISSED',
    ]),
  ]);
  process.stdout.write(`\n${lines.join('\n')}\n\nTotal ${seconds(performance.now() - startedAt)}\n`);
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
