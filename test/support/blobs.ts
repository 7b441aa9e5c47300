import { createHash, randomBytes } from 'node:crypto';
import { crc32, gunzipSync } from 'node:zlib';

export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Every manifest type, for Accept headers: a narrower list makes 2.8 answer with another digest. */
export const MANIFEST_ACCEPT = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerList,
  MediaTypes.dockerManifest,
].join(', ');

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export function sha256Digest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

const GZIP_OVERHEAD = 18;
const STORED_BLOCK_OVERHEAD = 5;
const STORED_BLOCK_MAX = 0xffff;

/**
 * A valid gzip member of exactly `size` bytes holding random data in stored deflate blocks,
 * so a layer of a requested size is still honest about its `tar+gzip` media type.
 */
export function randomGzipBlob(size: number): Uint8Array {
  const blocks = Math.max(1, Math.ceil((size - GZIP_OVERHEAD) / (STORED_BLOCK_MAX + STORED_BLOCK_OVERHEAD)));
  const payloadSize = size - GZIP_OVERHEAD - STORED_BLOCK_OVERHEAD * blocks;
  if (!Number.isInteger(size) || payloadSize < 0) {
    throw new Error(
      `a gzip layer needs at least ${GZIP_OVERHEAD + STORED_BLOCK_OVERHEAD} bytes, got ${size}`,
    );
  }
  const payload = randomBytes(payloadSize);
  const out = Buffer.alloc(size);
  out.set([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff], 0);
  let at = 10;
  let taken = 0;
  for (let i = 0; i < blocks; i++) {
    const len = Math.min(STORED_BLOCK_MAX, payloadSize - taken);
    out[at] = i === blocks - 1 ? 0x01 : 0x00;
    out.writeUInt16LE(len, at + 1);
    out.writeUInt16LE(~len & 0xffff, at + 3);
    at += STORED_BLOCK_OVERHEAD;
    payload.copy(out, at, taken, taken + len);
    at += len;
    taken += len;
  }
  out.writeUInt32LE(crc32(payload) >>> 0, at);
  out.writeUInt32LE(payloadSize >>> 0, at + 4);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The diff ID of a layer: the digest of its uncompressed content (the blob itself when not gzip). */
export function diffId(layer: Uint8Array): string {
  if (layer[0] === 0x1f && layer[1] === 0x8b) {
    try {
      return sha256Digest(gunzipSync(layer));
    } catch {
      return sha256Digest(layer);
    }
  }
  return sha256Digest(layer);
}

export function encodeJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

export function imageConfig(opts: { created: string; platform: Platform; layers: Uint8Array[] }): unknown {
  return {
    architecture: opts.platform.architecture,
    os: opts.platform.os,
    ...(opts.platform.variant ? { variant: opts.platform.variant } : {}),
    created: opts.created,
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] },
    rootfs: { type: 'layers', diff_ids: opts.layers.map(diffId) },
    history: opts.layers.map(() => ({ created: opts.created, created_by: 'registry-janitor test layer' })),
  };
}
