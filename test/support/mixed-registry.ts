import { MediaTypes } from './blobs.js';
import {
  type PushedImage,
  type PushedIndex,
  pushImage,
  pushIndex,
  pushSignature,
  putManifest,
} from './images.js';
import type { TestRegistry } from './registry.js';
import { skopeoPushMultiArch } from './skopeo.js';
import { backdate, setRevisionPushTime, setTagPushTime } from './storage.js';

const DAY = 86_400_000;

export interface MixedContent {
  /** web/app's images, oldest first; `latest` points to the last. */
  readonly images: readonly PushedImage[];
  /** Pushed by digest only, ten days ago. */
  readonly untagged: PushedImage;
  /** An OCI manifest whose `subject` is the newest image. */
  readonly referrer: PushedImage;
  /** cosign's `.sig` and `.att` tags for the newest image. */
  readonly signatures: readonly PushedImage[];
  /** Pretty-printed, with a trailing newline and non-ASCII annotations: its bytes are not JSON.stringify's. */
  readonly pretty: string;
  /** multi/base: an index skopeo pushed with `copy --all`, and an older Docker manifest list. */
  readonly skopeoIndex: { readonly digest: string; readonly children: readonly string[] };
  readonly dockerList: PushedIndex;
  /** ci/job: two images pushed in the same second, ranked by build time. */
  readonly tied: readonly PushedImage[];
}

/**
 * A registry with most of what a real one holds: tagged images with history, an untagged revision, cosign
 * signature tags, an OCI referrer by `subject`, a multi-platform index pushed by skopeo, a Docker manifest
 * list, a hand-formatted manifest, and two images tied on push time.
 */
export async function pushMixedContent(reg: TestRegistry): Promise<MixedContent> {
  const images: PushedImage[] = [];
  for (const [tag, days] of [
    ['1.0', 30],
    ['1.1', 20],
    ['1.2', 0],
  ] as const) {
    const image = await pushImage(reg, 'web/app', tag, { format: tag === '1.1' ? 'oci' : 'docker' });
    if (days > 0) await backdate(reg, 'web/app', image.digest, days, tag);
    images.push(image);
  }
  const newest = images[images.length - 1] as PushedImage;
  await putManifest(reg, 'web/app', 'latest', newest.mediaType, newest.manifest);
  const untagged = await pushImage(reg, 'web/app', undefined, {});
  await backdate(reg, 'web/app', untagged.digest, 10);
  const signatures = [
    await pushSignature(reg, 'web/app', newest.digest, 'sig'),
    await pushSignature(reg, 'web/app', newest.digest, 'att'),
  ];
  const referrer = await pushImage(reg, 'web/app', undefined, {
    subject: { digest: newest.digest, size: newest.manifest.length, mediaType: newest.mediaType },
    configMediaType: 'application/vnd.example.sbom.config.v1+json',
    annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
  });

  const base = await pushImage(reg, 'web/pretty', undefined, {});
  const prettyBody = `${JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: MediaTypes.dockerManifest,
      config: { mediaType: MediaTypes.dockerConfig, ...base.config },
      layers: base.layers.map((layer) => ({ mediaType: MediaTypes.dockerLayerGzip, ...layer })),
      annotations: { description: 'Größe: klein — 🚀' },
    },
    null,
    3,
  )}\n`;
  const pretty = await putManifest(reg, 'web/pretty', 'formatted', MediaTypes.dockerManifest, prettyBody);

  const oldChildren = [
    await pushImage(reg, 'multi/base', undefined, { platform: { os: 'linux', architecture: 'amd64' } }),
    await pushImage(reg, 'multi/base', undefined, {
      platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
    }),
  ];
  const dockerList = await pushIndex(reg, 'multi/base', '0.9', oldChildren);
  for (const digest of [dockerList.digest, ...oldChildren.map((child) => child.digest)])
    await backdate(reg, 'multi/base', digest, 40);
  await backdate(reg, 'multi/base', dockerList.digest, 40, '0.9');
  const skopeoIndex = await skopeoPushMultiArch(reg, 'multi/base', '1.0', [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64' },
  ]);

  const second = new Date(Math.floor((Date.now() - 2 * DAY) / 1000) * 1000);
  const tied: PushedImage[] = [];
  for (const [tag, builtDaysAgo] of [
    ['a', 5],
    ['b', 3],
  ] as const) {
    const image = await pushImage(reg, 'ci/job', tag, {
      created: new Date(Date.now() - builtDaysAgo * DAY).toISOString(),
    });
    await setRevisionPushTime(reg, 'ci/job', image.digest, second);
    await setTagPushTime(reg, 'ci/job', tag, second);
    tied.push(image);
  }

  return { images, untagged, referrer, signatures, pretty, skopeoIndex, dockerList, tied };
}
