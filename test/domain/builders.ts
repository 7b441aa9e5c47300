import { createHash } from 'node:crypto';
import type { Inventory, Manifest, Repository, Tag } from '../../lambda/domain/inventory.js';
import type { Digest } from '../../lambda/domain/names.js';

export const NOW = new Date('2026-06-01T12:00:00Z');
export const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000).toISOString();
export const hoursAgo = (hours: number) => new Date(NOW.getTime() - hours * 3_600_000).toISOString();

export const digestOf = (seed: string): Digest => `sha256:${createHash('sha256').update(seed).digest('hex')}`;

const IMAGE_CONFIG = 'application/vnd.docker.container.image.v1+json';

/** An image manifest whose blobs are named by seeds: the same seed is the same blob. */
export function image(
  seed: string,
  opts: {
    layers?: string[];
    layerSize?: number;
    pushedAt?: string;
    created?: string;
    subject?: Digest;
    configType?: string;
  } = {},
): Manifest {
  return {
    digest: digestOf(`manifest:${seed}`),
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    size: 500,
    kind: 'image',
    config: { digest: digestOf(`config:${seed}`), size: 100, mediaType: opts.configType ?? IMAGE_CONFIG },
    layers: (opts.layers ?? [`layer:${seed}`]).map((layer) => ({
      digest: digestOf(layer),
      size: opts.layerSize ?? 1000,
    })),
    children: [],
    ...(opts.pushedAt ? { pushedAt: opts.pushedAt } : {}),
    ...(opts.created ? { created: opts.created } : {}),
    ...(opts.subject ? { subject: opts.subject } : {}),
  };
}

export function index(seed: string, children: Manifest[], opts: { pushedAt?: string } = {}): Manifest {
  return {
    digest: digestOf(`index:${seed}`),
    mediaType: 'application/vnd.oci.image.index.v1+json',
    size: 300,
    kind: 'index',
    layers: [],
    children: children.map((child, position) => ({
      digest: child.digest,
      size: child.size,
      mediaType: child.mediaType,
      platform: position === 0 ? 'linux/amd64' : 'linux/arm64',
    })),
    ...(opts.pushedAt ? { pushedAt: opts.pushedAt } : {}),
  };
}

export const tag = (name: string, manifest: Manifest): Tag => ({ name, digest: manifest.digest });

export function repository(
  name: string,
  tags: Tag[],
  manifests: Manifest[],
  revisionsVisible = true,
): Repository {
  return { name, tags, manifests, revisionsVisible };
}

export function inventory(...repositories: Repository[]): Inventory {
  return {
    registry: 'http://127.0.0.1:5000',
    scannedAt: NOW.toISOString(),
    catalogComplete: true,
    repositories,
  };
}
