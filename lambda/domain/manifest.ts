import { z } from 'zod';
import type { ChildRef, Manifest } from './inventory.js';
import { isDigest } from './names.js';

export const MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** Config media types of runnable images, the only configs whose `created` means a build time. */
export const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.container.image.v1+json',
  'application/vnd.oci.image.config.v1+json',
]);

const INDEX_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);

const digestField = z.string().refine(isDigest, 'expected a sha256 digest');
const descriptor = z.object({
  mediaType: z.string().max(256).default(''),
  digest: digestField,
  size: z.number().int().min(0),
  platform: z
    .object({
      os: z.string().max(64),
      architecture: z.string().max(64),
      variant: z.string().max(64).optional(),
    })
    .optional(),
});

const manifestBody = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().max(256).optional(),
  artifactType: z.string().max(256).optional(),
  config: descriptor.optional(),
  layers: z.array(descriptor).optional(),
  manifests: z.array(descriptor).optional(),
  subject: descriptor.optional(),
});

export class ManifestFormatError extends Error {
  override readonly name = 'ManifestFormatError';
}

/** Reads a manifest body into the inventory's model. Sizes are the body's own length. */
export function parseManifest(digest: string, mediaType: string, body: Uint8Array): Manifest {
  if (!isDigest(digest)) throw new ManifestFormatError(`manifest digest is not a sha256 digest`);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new ManifestFormatError(`manifest ${digest} is not JSON`);
  }
  const parsed = manifestBody.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ManifestFormatError(
      `manifest ${digest} is not a schema 2 / OCI manifest (${issue?.path.join('.') || 'body'}: ${issue?.message})`,
    );
  }
  const data = parsed.data;
  const type =
    mediaType || data.mediaType || (data.manifests ? MEDIA_TYPES.ociIndex : MEDIA_TYPES.ociManifest);
  const isIndex = INDEX_TYPES.has(type) || (data.manifests !== undefined && data.config === undefined);
  const children: ChildRef[] = isIndex
    ? (data.manifests ?? []).map((child) => ({
        digest: child.digest,
        size: child.size,
        mediaType: child.mediaType,
        ...(child.platform
          ? {
              platform: [child.platform.os, child.platform.architecture, child.platform.variant]
                .filter(Boolean)
                .join('/'),
            }
          : {}),
      }))
    : [];
  return {
    digest,
    mediaType: type,
    size: body.byteLength,
    kind: isIndex ? 'index' : 'image',
    ...(!isIndex && data.config
      ? { config: { digest: data.config.digest, size: data.config.size, mediaType: data.config.mediaType } }
      : {}),
    layers: isIndex ? [] : (data.layers ?? []).map((layer) => ({ digest: layer.digest, size: layer.size })),
    children,
    ...(data.subject ? { subject: data.subject.digest } : {}),
    ...(data.artifactType ? { artifactType: data.artifactType } : {}),
  };
}

const configBody = z.object({ created: z.string().max(64).optional() });

/** The `created` of an image config, when it is a valid date. */
export function parseConfigCreated(body: Uint8Array): string | undefined {
  try {
    const parsed = configBody.safeParse(JSON.parse(new TextDecoder().decode(body)));
    if (!parsed.success || parsed.data.created === undefined) return undefined;
    const ms = Date.parse(parsed.data.created);
    return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
  } catch {
    return undefined;
  }
}
