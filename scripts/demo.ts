import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plan } from '../lambda/domain/plan.js';
import { formatBytes } from '../lambda/report/format.js';
import {
  deleteManifest,
  headManifest,
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

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'bin', 'registry-janitor.js');

const KiB = 1024;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64' };

function heading(title: string): void {
  process.stdout.write(`\n== ${title} ${'='.repeat(Math.max(0, 72 - title.length))}\n\n`);
}

const say = (text: string) => process.stdout.write(`${text}\n`);

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
    opts: { platform?: typeof AMD64; format?: 'oci' | 'docker' } = {},
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

  async multiArch(repository: string, tag: string, when: Date, base: Map<string, Uint8Array>): Promise<void> {
    const children: PushedImage[] = [];
    for (const platform of [AMD64, ARM64]) {
      const baseLayer = base.get(platform.architecture);
      if (!baseLayer) throw new Error(`no base layer for ${platform.architecture}`);
      children.push(
        await this.image(repository, undefined, when, [baseLayer, randomGzipBlob(160 * KiB)], {
          platform,
          format: 'oci',
        }),
      );
    }
    const index = await pushIndex(this.reg, repository, tag, children);
    this.pushes += 1;
    await setRevisionPushTime(this.reg, repository, index.digest, when);
    await setTagPushTime(this.reg, repository, tag, when);
  }

  async signature(repository: string, subject: PushedImage, when: Date): Promise<void> {
    const signature = await pushSignature(this.reg, repository, subject.digest, 'sig');
    this.pushes += 1;
    await setRevisionPushTime(this.reg, repository, signature.digest, when);
    await setTagPushTime(this.reg, repository, `${subject.digest.replace(':', '-')}.sig`, when);
  }
}

/** A push history spread over the last weeks: what a registry looks like after a month of CI. */
async function fillRegistry(history: History): Promise<void> {
  const ago = (ms: number) => history.at(ms);
  const base = new Map([
    ['amd64', randomGzipBlob(320 * KiB)],
    ['arm64', randomGzipBlob(300 * KiB)],
  ]);
  const baseAmd64 = base.get('amd64') ?? randomGzipBlob(320 * KiB);
  const nodeRuntime = randomGzipBlob(192 * KiB);

  say('base/runtime      multi-arch index (amd64 + arm64): 3.0 once, 3.1 rebuilt 3 times');
  await history.multiArch('base/runtime', '3.0', ago(45 * DAY), base);
  for (const days of [21, 12, 3]) await history.multiArch('base/runtime', '3.1', ago(days * DAY), base);

  say('web/frontend      latest pushed 15 times over 28 days, releases v1.0…v1.5, two PR builds, signatures');
  const releases = new Map([
    [28, 'v1.0'],
    [22, 'v1.1'],
    [16, 'v1.2'],
    [10, 'v1.3'],
    [6, 'v1.4'],
    [4, 'v1.5'],
  ]);
  const pushTimes = [...Array.from({ length: 14 }, (_, i) => (28 - 2 * i) * DAY), 2 * HOUR];
  const releaseImages = new Map<string, PushedImage>();
  for (const agoMs of pushTimes) {
    const when = ago(agoMs);
    const appLayer = randomGzipBlob((96 + Math.round(Math.random() * 64)) * KiB);
    const image = await history.image('web/frontend', 'latest', when, [baseAmd64, nodeRuntime, appLayer]);
    const release = releases.get(agoMs / DAY);
    if (release !== undefined) {
      await history.retag('web/frontend', image, release, when);
      releaseImages.set(release, image);
    }
  }
  for (const [days, tag] of [
    [3, 'pr-412'],
    [1, 'pr-415'],
  ] as const) {
    await history.image('web/frontend', tag, ago(days * DAY), [baseAmd64, nodeRuntime, randomGzipBlob(128 * KiB)]);
  }
  for (const release of ['v1.2', 'v1.5']) {
    const image = releaseImages.get(release);
    if (image) await history.signature('web/frontend', image, ago(((release === 'v1.2' ? 16 : 4) * DAY) - 5 * MINUTE));
  }

  say('tools/ci/builder  nested repository: 1.8…1.11 (+ stable), a CI build in flight, an abandoned one');
  const toolchain = randomGzipBlob(256 * KiB);
  const builds = [
    [40, '1.8', [baseAmd64, randomGzipBlob(256 * KiB)]],
    [25, '1.9', [baseAmd64, randomGzipBlob(256 * KiB)]],
    [11, '1.10', [baseAmd64, toolchain, randomGzipBlob(64 * KiB)]],
    [5, '1.11', [baseAmd64, toolchain, randomGzipBlob(64 * KiB)]],
  ] as const;
  let newest: { image: PushedImage; layers: Uint8Array[]; when: Date } | undefined;
  for (const [days, tag, layers] of builds) {
    const when = ago(days * DAY);
    newest = { image: await history.image('tools/ci/builder', tag, when, [...layers]), layers: [...layers], when };
  }
  if (!newest) throw new Error('no builder image pushed');
  await history.retag('tools/ci/builder', newest.image, 'stable', newest.when);
  await history.image('tools/ci/builder', undefined, ago(9 * DAY), [baseAmd64, randomGzipBlob(96 * KiB)]);
  await history.image('tools/ci/builder', undefined, ago(20 * MINUTE), [baseAmd64, randomGzipBlob(96 * KiB)]);

  say('legacy/api        renamed to tools/ci/builder: its last image was deleted, the repository stays listed');
  const copy = await history.image('legacy/api', 'stable', newest.when, newest.layers);
  if (copy.digest !== newest.image.digest) {
    throw new Error(`legacy/api:stable is ${copy.digest}, expected a copy of ${newest.image.digest}`);
  }
  const status = await deleteManifest(history.reg, 'legacy/api', copy.digest);
  if (status !== 202) throw new Error(`deleting legacy/api@${copy.digest}: HTTP ${status}`);
}

interface CliResult {
  readonly code: number;
  readonly stdout: string;
}

function indentLines(target: NodeJS.WriteStream): (chunk: Buffer) => void {
  let partial = '';
  return (chunk) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) target.write(`  ${line}\n`);
  };
}

/** Runs the real command line as a person would; output streams through, indented, unless captured. */
function registryJanitor(args: readonly string[], opts: { capture?: boolean } = {}): Promise<CliResult> {
  if (!opts.capture) say(`$ registry-janitor ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const captured: Buffer[] = [];
    const toStdout = indentLines(process.stdout);
    child.stdout.on('data', (chunk: Buffer) => (opts.capture ? captured.push(chunk) : toStdout(chunk)));
    child.stderr.on('data', indentLines(process.stderr));
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(captured).toString('utf8') }),
    );
  });
}

async function diskUsage(reg: TestRegistry): Promise<{ sizes: Map<string, number>; bytes: number }> {
  const sizes = await blobSizes(reg);
  let bytes = 0;
  for (const size of sizes.values()) bytes += size;
  return { sizes, bytes };
}

/** The registry's own garbage collector (never --delete-untagged on 2.x), then a restart to drop its blob cache. */
async function collectGarbage(reg: TestRegistry): Promise<void> {
  say(`$ docker-registry garbage-collect ${reg.configPath}`);
  const result = await reg.garbageCollect();
  const summary = result.stdout.split('\n').find((line) => /blobs marked/.test(line));
  say(`  ${summary?.trim() ?? '(no summary line)'}`);
  if (result.exitCode !== 0) {
    throw new Error(`garbage-collect exited ${result.exitCode}: ${result.stderr.trim().slice(-2000)}`);
  }
  say('$ restart the registry (its in-memory blob cache still lists the deleted blobs)');
  await reg.restart();
}

function keptTags(plan: Plan): { repository: string; tag: string }[] {
  return plan.repositories.flatMap((repository) =>
    repository.tags.filter((tag) => tag.decision === 'keep').map((tag) => ({ repository: repository.name, tag: tag.tag })),
  );
}

function deletedTags(plan: Plan): { repository: string; tag: string }[] {
  return plan.repositories.flatMap((repository) =>
    repository.tags
      .filter((tag) => tag.decision === 'delete')
      .map((tag) => ({ repository: repository.name, tag: tag.tag })),
  );
}

const shortTag = (tag: string) => tag.replace(/^(sha256-[a-f0-9]{12})[a-f0-9]{52}/, '$1…');

async function main(): Promise<number> {
  const started = Date.now();
  heading('1. A throwaway registry with a month of push history');
  const reg = await startRegistry();
  try {
    say(`registry ${reg.url}, storage root ${reg.root}\n`);
    const history = new History(reg, Date.now());
    await fillRegistry(history);
    const before = await diskUsage(reg);
    say(`\n${history.count} manifests pushed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    say(`Disk usage before: ${formatBytes(before.bytes)} (${before.bytes} bytes in ${before.sizes.size} blobs)`);

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
    const planned = await registryJanitor(['plan', ...flags, '--json'], { capture: true });
    if (planned.code !== 0) throw new Error(`plan --json exited ${planned.code}`);
    const plan = JSON.parse(planned.stdout) as Plan;
    const shown = await registryJanitor(['plan', ...flags]);
    if (shown.code !== 0) throw new Error(`plan exited ${shown.code}`);

    heading('3. Clean: delete the stale manifests through the registry API');
    const cleaned = await registryJanitor(['clean', ...flags, '--yes']);
    if (cleaned.code !== 0) throw new Error(`clean exited ${cleaned.code}`);

    heading('4. Garbage collection on the registry host');
    await collectGarbage(reg);

    heading('5. Result');
    const after = await diskUsage(reg);
    const freed = freedBytes(before.sizes, after.sizes);
    const estimate = plan.reclaim.bytes;
    say(`Disk usage after:  ${formatBytes(after.bytes)} (${after.bytes} bytes in ${after.sizes.size} blobs)`);
    say(`Freed (measured):  ${formatBytes(freed)} (${freed} bytes)`);
    say(`Plan estimate:     ${formatBytes(estimate)} (${estimate} bytes)${plan.reclaim.exact ? '' : ', an upper bound'}`);
    const problems: string[] = [];
    if (freed !== estimate) problems.push(`measured ${freed} bytes freed, the plan estimated ${estimate}`);

    say('\nEvery kept tag still pulls completely (skopeo copy --all, every blob checked):');
    for (const { repository, tag } of keptTags(plan)) {
      const pulled = await skopeoPull(reg, repository, tag);
      say(`  ${pulled.ok ? 'ok  ' : 'FAIL'}  ${repository}:${shortTag(tag)}${pulled.error ? `  ${pulled.error}` : ''}`);
      if (!pulled.ok) problems.push(`${repository}:${tag} does not pull: ${pulled.error}`);
    }
    const deleted = deletedTags(plan);
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
    say(`\nDone in ${((Date.now() - started) / 1000).toFixed(1)} s: nothing kept was lost, and the estimate was exact.`);
    return 0;
  } finally {
    await reg.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
