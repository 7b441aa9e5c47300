// The planning rows of `npm run bench`: a synthetic inventory of 10,000, 30,000 and 100,000 tags (3 manifests
// per tag) built and planned in a fresh process each, so that its peak RSS is that of the inventory and its
// plan alone. The child runs from an esbuild bundle, as the function and the CLI do, so no TypeScript loader
// takes memory in it.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import type { PlanningSample } from './bench-planning-child.js';
import { PROJECT_ROOT } from './build.js';

const run = promisify(execFile);
const MiB = 1024 ** 2;

export const PLANNING_TARGET = { tags: 100_000, planMs: 2_000, peakRssBytes: 300 * MiB } as const;
const SIZES = [10_000, 30_000, PLANNING_TARGET.tags];
const SMALL_SIZES = [1_000, 3_000, 10_000];

export interface BenchRow {
  readonly what: string;
  readonly measured: string;
  readonly target: string;
  readonly pass?: boolean;
}

const count = (n: number) => n.toLocaleString('en-US');
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

async function bundleChild(dir: string): Promise<string> {
  const outfile = join(dir, 'bench-planning-child.mjs');
  await build({
    entryPoints: [join(PROJECT_ROOT, 'scripts', 'bench-planning-child.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20.18',
    logLevel: 'warning',
  });
  return outfile;
}

async function sample(child: string, tags: number): Promise<PlanningSample> {
  const { stdout } = await run(process.execPath, ['--expose-gc', child, String(tags)], {
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout) as PlanningSample;
}

/**
 * Plans synthetic inventories of growing size, each in its own process, and returns the rows: the time and
 * peak RSS at each size, and the slope of RSS per 1,000 tags between the smallest and largest.
 */
export async function benchPlanningScale(
  options: { small?: boolean; log?: (text: string) => void } = {},
): Promise<BenchRow[]> {
  const log = options.log ?? (() => {});
  const sizes = options.small ? SMALL_SIZES : SIZES;
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-bench-plan-'));
  try {
    const child = await bundleChild(dir);
    const samples: PlanningSample[] = [];
    for (const tags of sizes) {
      log(`planning: building and planning ${count(tags)} tags in a fresh process…`);
      const measured = await sample(child, tags);
      log(
        `planning: ${count(measured.tags)} tags, ${count(measured.manifests)} manifests: plan ${seconds(measured.planMs)}, ` +
          `peak RSS ${mib(measured.peakRss)} (baseline ${mib(measured.baselineRss)}), heap: inventory ` +
          `${mib(measured.inventoryHeap)}, with its plan ${mib(measured.retainedHeap)}`,
      );
      samples.push(measured);
    }
    const first = samples[0];
    const last = samples.at(-1);
    if (!first || !last) return [];
    const atTarget = last.tags >= PLANNING_TARGET.tags;
    const rows: BenchRow[] = [];
    for (const measured of samples) {
      const judged = measured === last && atTarget;
      rows.push(
        {
          what: `planning ${count(measured.tags)} tags (${count(measured.manifests)} manifests), time`,
          measured: seconds(measured.planMs),
          target: judged ? `< ${seconds(PLANNING_TARGET.planMs)}` : '-',
          ...(judged ? { pass: measured.planMs < PLANNING_TARGET.planMs } : {}),
        },
        {
          what: `planning ${count(measured.tags)} tags, peak RSS (inventory + plan)`,
          measured: mib(measured.peakRss),
          target: judged ? `< ${mib(PLANNING_TARGET.peakRssBytes)}` : '-',
          ...(judged ? { pass: measured.peakRss < PLANNING_TARGET.peakRssBytes } : {}),
        },
      );
    }
    const slope = ((last.peakRss - first.peakRss) / (last.tags - first.tags)) * 1000;
    rows.push({
      what: `  peak RSS per 1,000 tags, ${count(first.tags)} to ${count(last.tags)}`,
      measured: `${(slope / MiB).toFixed(1)} MiB`,
      target: '-',
    });
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
