import {
  cosignTag,
  deleteManifest,
  type Platform,
  type PushedImage,
  pushImage,
  pushIndex,
  pushSignature,
  putManifest,
  randomGzipBlob,
} from '../test/support/images.js';
import type { TestRegistry } from '../test/support/registry.js';
import { setRevisionPushTime, setTagPushTime } from '../test/support/storage.js';

const KiB = 1024;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const AMD64 = { os: 'linux', architecture: 'amd64' } as const;
const ARM64 = { os: 'linux', architecture: 'arm64' } as const;

/** The policy the demo plans and cleans with: the last 3 images, latest, and the v1.5 release. */
export function demoPolicy(reg: TestRegistry): string[] {
  return [
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
}

export class History {
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

/**
 * A push history spread over the last weeks: what a registry looks like after a month of CI. `say` is told what
 * each repository holds.
 */
export async function fillRegistry(history: History, say: (text: string) => void): Promise<void> {
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
