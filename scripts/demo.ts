import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exampleLines } from '../lambda/command-line.js';
import type { Plan } from '../lambda/domain/plan.js';
import { DEFAULT_WIDTH, fitText, formatBytes } from '../lambda/report/format.js';
import { installDockerStandIn } from '../test/support/docker-stand-in.js';
import {
  cosignTag,
  deleteManifest,
  headManifest,
  type Platform,
  type PushedImage,
  pushImage,
  pushIndex,
  pushSignature,
  putManifest,
  randomGzipBlob,
} from '../test/support/images.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { skopeoPull } from '../test/support/skopeo.js';
import { blobSizes, freedBytes, setRevisionPushTime, setTagPushTime } from '../test/support/storage.js';
import { stopOnInterrupt } from './interrupt.js';
import { runCli } from './run-cli.js';

const KiB = 1024;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const AMD64 = { os: 'linux', architecture: 'amd64' } as const;
const ARM64 = { os: 'linux', architecture: 'arm64' } as const;

function heading(title: string): void {
  process.stdout.write(`\n== ${title} ${'='.repeat(Math.max(0, 72 - title.length))}\n\n`);
}

const WIDTH = DEFAULT_WIDTH;
const say = (text: string) => process.stdout.write(`${fitText(text, WIDTH)}\n`);
/** An argument as a shell would need it written. */
const quoted = (arg: string) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);

class History {
  private pushes = 0;

  constructor(
    readonly reg: TestRegistry,
    readonly now: number,
  ) {}

  get count(): number {
    return this.pushes;
  }

  at(agoMs: number): Date {
    return new Date(this.now - agoMs);
  }

  /** Pushes an image (by tag, or by digest when untagged) and backdates its revision and tag to `when`. */
  async image(
    repository: string,
    tag: string | undefined,
    when: Date,
    layers: Uint8Array[],
    opts: { platform?: Platform; format?: 'oci' | 'docker' } = {},
  ): Promise<PushedImage> {
    const pushed = await pushImage(this.reg, repository, tag, {
      layers,
      created: new Date(when.getTime() - 12 * MINUTE).toISOString(),
      platform: opts.platform ?? AMD64,
      format: opts.format ?? 'docker',
    });
    this.pushes += 1;
    await setRevisionPushTime(this.reg, repository, pushed.digest, when);
    if (tag !== undefined) await setTagPushTime(this.reg, repository, tag, when);
    return pushed;
  }

  /** Points one more tag at an image already in the repository, as a release pipeline does. */
  async retag(repository: string, image: PushedImage, tag: string, when: Date): Promise<void> {
    await putManifest(this.reg, repository, tag, image.mediaType, image.manifest);
    await setRevisionPushTime(this.reg, repository, image.digest, when);
    await setTagPushTime(this.reg, repository, tag, when);
  }

  /** Pushes a two-platform index; `reuse` children are unchanged platforms carried over from an earlier build. */
  async multiArch(
    repository: string,
    tag: string,
    when: Date,
    base: BaseLayers,
    reuse: readonly PushedImage[] = [],
  ): Promise<PushedImage[]> {
    const children: PushedImage[] = [];
    for (const platform of [AMD64, ARM64]) {
      const unchanged = reuse.find((image) => image.platform?.architecture === platform.architecture);
      const layers = [base[platform.architecture], randomGzipBlob(160 * KiB)];
      children.push(
        unchanged ?? (await this.image(repository, undefined, when, layers, { platform, format: 'oci' })),
      );
    }
    const index = await pushIndex(this.reg, repository, tag, children);
    this.pushes += 1;
    await setRevisionPushTime(this.reg, repository, index.digest, when);
    await setTagPushTime(this.reg, repository, tag, when);
    return children;
  }

  async signature(repository: string, subject: PushedImage, when: Date): Promise<void> {
    const signature = await pushSignature(this.reg, repository, subject.digest, 'sig');
    this.pushes += 1;
    await setRevisionPushTime(this.reg, repository, signature.digest, when);
    await setTagPushTime(this.reg, repository, cosignTag(subject.digest, 'sig'), when);
  }
}

interface BaseLayers {
  readonly amd64: Uint8Array;
  readonly arm64: Uint8Array;
}

/** A push history spread over the last weeks: what a registry looks like after a month of CI. */
async function fillRegistry(history: History): Promise<void> {
  const ago = (ms: number) => history.at(ms);
  const base: BaseLayers = { amd64: randomGzipBlob(320 * KiB), arm64: randomGzipBlob(300 * KiB) };
  const nodeRuntime = randomGzipBlob(192 * KiB);

  say('base/runtime      multi-arch index (amd64 + arm64): 3.0 once, 3.1 rebuilt 3 times (last: arm64 only)');
  await history.multiArch('base/runtime', '3.0', ago(45 * DAY), base);
  await history.multiArch('base/runtime', '3.1', ago(21 * DAY), base);
  const previous = await history.multiArch('base/runtime', '3.1', ago(12 * DAY), base);
  const amd64 = previous.filter((image) => image.platform?.architecture === 'amd64');
  await history.multiArch('base/runtime', '3.1', ago(3 * DAY), base, amd64);

  say('web/frontend      latest pushed 15 times over 4 weeks, releases v1.0…v1.5 (two signed), 2 PR builds');
  const releaseDays = new Map([
    [28, 'v1.0'],
    [22, 'v1.1'],
    [16, 'v1.2'],
    [10, 'v1.3'],
    [6, 'v1.4'],
    [4, 'v1.5'],
  ]);
  const signed = new Set(['v1.2', 'v1.5']);
  const pushes = [...Array.from({ length: 14 }, (_, i) => (28 - 2 * i) * DAY), 2 * HOUR];
  for (const agoMs of pushes) {
    const when = ago(agoMs);
    const app = randomGzipBlob((96 + Math.round(Math.random() * 64)) * KiB);
    const image = await history.image('web/frontend', 'latest', when, [base.amd64, nodeRuntime, app]);
    const release = releaseDays.get(agoMs / DAY);
    if (release === undefined) continue;
    await history.retag('web/frontend', image, release, when);
    if (signed.has(release))
      await history.signature('web/frontend', image, new Date(when.getTime() + 5 * MINUTE));
  }
  for (const [days, tag] of [
    [3, 'pr-412'],
    [1, 'pr-415'],
  ] as const) {
    const layers = [base.amd64, nodeRuntime, randomGzipBlob(128 * KiB)];
    await history.image('web/frontend', tag, ago(days * DAY), layers);
  }

  say('tools/ci/builder  nested repository: 1.8…1.11 (+ stable), a CI build in flight, an abandoned one');
  const toolchain = randomGzipBlob(256 * KiB);
  const builds: [number, string, Uint8Array[]][] = [
    [40, '1.8', [base.amd64, randomGzipBlob(256 * KiB)]],
    [25, '1.9', [base.amd64, randomGzipBlob(256 * KiB)]],
    [11, '1.10', [base.amd64, toolchain, randomGzipBlob(64 * KiB)]],
    [5, '1.11', [base.amd64, toolchain, randomGzipBlob(64 * KiB)]],
  ];
  let newest: { image: PushedImage; layers: Uint8Array[]; when: Date } | undefined;
  for (const [days, tag, layers] of builds) {
    const when = ago(days * DAY);
    newest = { image: await history.image('tools/ci/builder', tag, when, layers), layers, when };
  }
  if (!newest) throw new Error('no builder image pushed');
  await history.retag('tools/ci/builder', newest.image, 'stable', newest.when);
  await history.image('tools/ci/builder', undefined, ago(9 * DAY), [base.amd64, randomGzipBlob(96 * KiB)]);
  await history.image('tools/ci/builder', undefined, ago(20 * MINUTE), [
    base.amd64,
    randomGzipBlob(96 * KiB),
  ]);

  // The copy shares every blob with tools/ci/builder:1.11, so deleting it frees nothing the plan cannot see.
  say(
    'legacy/api        renamed to tools/ci/builder: its image was deleted, the empty repository stays listed',
  );
  const copy = await history.image('legacy/api', 'stable', newest.when, newest.layers);
  if (copy.digest !== newest.image.digest) {
    throw new Error(`legacy/api:stable is ${copy.digest}, expected a copy of ${newest.image.digest}`);
  }
  const status = await deleteManifest(history.reg, 'legacy/api', copy.digest);
  if (status !== 202) throw new Error(`deleting legacy/api@${copy.digest}: HTTP ${status}`);
}

/** Runs the real command line as a person would, its output indented under the command. */
async function registryJanitor(args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const command = exampleLines(`registry-janitor ${args.map(quoted).join(' ')}`, WIDTH);
  say(`${command.join('\n').replace(/^ {2}/, '$ ')}\n`);
  // Its output is indented by two: the command fits it into what is left.
  const result = await runCli(args, {
    env: { ...(env ?? process.env), COLUMNS: String(WIDTH - 2) },
    onStdout: (line) => say(`  ${line}`),
    onStderr: (line) => process.stderr.write(`  ${line}\n`),
  });
  return result.code;
}

async function diskUsage(reg: TestRegistry): Promise<{ sizes: Map<string, number>; bytes: number }> {
  const sizes = await blobSizes(reg);
  let bytes = 0;
  for (const size of sizes.values()) bytes += size;
  return { sizes, bytes };
}

function tagsWith(plan: Plan, decision: 'keep' | 'delete'): { repository: string; tag: string }[] {
  return plan.repositories.flatMap((repository) =>
    repository.tags
      .filter((tag) => tag.decision === decision)
      .map((tag) => ({ repository: repository.name, tag: tag.tag })),
  );
}

const shortTag = (tag: string) => tag.replace(/^(sha256-[a-f0-9]{12})[a-f0-9]{52}/, '$1…');

async function main(): Promise<number> {
  const started = Date.now();
  heading('1. A throwaway registry with a month of push history');
  const reg = await startRegistry();
  const undoInterrupt = stopOnInterrupt(reg);
  try {
    say(`registry ${reg.url}, storage root ${reg.root}\n`);
    const history = new History(reg, Date.now());
    await fillRegistry(history);
    const before = await diskUsage(reg);
    say(`\n${history.count} manifests pushed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    say(
      `Disk usage before: ${formatBytes(before.bytes)} (${before.bytes} bytes in ${before.sizes.size} blobs)`,
    );

    const flags = [
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--keep-last',
      '3',
      '--keep-tag',
      '^latest$',
      '--keep-tag',
      '^v1\\.5$',
      '--untagged-grace',
      '1h',
    ];

    heading('2. Plan: what is stale, and why (changes nothing)');
    const planned = await runCli(['plan', ...flags, '--json']);
    if (planned.code !== 0) throw new Error(`plan --json exited ${planned.code}: ${planned.stderr.trim()}`);
    const plan = JSON.parse(planned.stdout) as Plan;
    const shown = await registryJanitor(['plan', ...flags]);
    if (shown !== 0) throw new Error(`plan exited ${shown}`);

    heading('3. Clean: delete, collect garbage on the host, verify every kept image');
    say('The host script runs for real; `docker` is a stand-in that maps');
    say('`docker exec registry …`, `docker restart registry` and friends onto this');
    say('throwaway registry (no Docker engine needed).\n');
    const docker = await installDockerStandIn(reg);
    const hostDir = await mkdtemp(join(tmpdir(), 'registry-janitor-demo-host-'));
    try {
      const hostFlags = [
        '--gc',
        'local',
        '--lock-file',
        join(hostDir, 'lock'),
        '--log-dir',
        join(hostDir, 'logs'),
      ];
      const cleaned = await registryJanitor(['clean', ...flags, ...hostFlags, '--yes'], docker.env);
      if (cleaned !== 0) throw new Error(`clean exited ${cleaned}`);
      const calls = (await docker.calls()).map((argv) => `docker ${argv.join(' ')}`);
      say('\nWhat the host script asked of docker:');
      for (const call of calls.filter((c) => /garbage-collect|restart/.test(c))) say(`  $ ${call}`);
    } finally {
      await docker.close();
      await rm(hostDir, { recursive: true, force: true });
    }

    heading('4. Result');
    const after = await diskUsage(reg);
    const freed = freedBytes(before.sizes, after.sizes);
    const estimate = plan.reclaim.bytes;
    say(`Disk usage after:  ${formatBytes(after.bytes)} (${after.bytes} bytes in ${after.sizes.size} blobs)`);
    say(`Freed (measured):  ${formatBytes(freed)} (${freed} bytes)`);
    say(
      `Plan estimate:     ${formatBytes(estimate)} (${estimate} bytes)${plan.reclaim.exact ? '' : ', an upper bound'}`,
    );
    const problems: string[] = [];
    if (freed !== estimate) problems.push(`measured ${freed} bytes freed, the plan estimated ${estimate}`);

    say('\nEvery kept tag still pulls completely (skopeo copy --all, every blob checked):');
    for (const { repository, tag } of tagsWith(plan, 'keep')) {
      const pulled = await skopeoPull(reg, repository, tag);
      say(
        `  ${pulled.ok ? 'ok  ' : 'FAIL'}  ${repository}:${shortTag(tag)}${pulled.error ? `  ${pulled.error}` : ''}`,
      );
      if (!pulled.ok) problems.push(`${repository}:${tag} does not pull: ${pulled.error}`);
    }
    const deleted = tagsWith(plan, 'delete');
    let lingering = 0;
    for (const { repository, tag } of deleted) {
      if ((await headManifest(reg, repository, tag)) !== undefined) {
        lingering += 1;
        problems.push(`${repository}:${tag} was planned for deletion and still resolves`);
      }
    }
    say(`\n${deleted.length - lingering} of ${deleted.length} deleted tags are gone.`);

    if (problems.length > 0) {
      heading('FAILED');
      for (const problem of problems) say(`  ${problem}`);
      return 1;
    }
    say(
      `\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s: nothing kept was lost, and the estimate was exact.`,
    );
    return 0;
  } finally {
    undoInterrupt();
    await reg.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(
      `demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  },
);
