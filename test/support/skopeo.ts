import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Descriptor,
  encodeJson,
  imageConfig,
  MediaTypes,
  type Platform,
  randomGzipBlob,
  sha256Digest,
} from './blobs.js';
import { headManifest, type PushedImage } from './images.js';
import type { TestRegistry } from './registry.js';

export const SKOPEO_BINARY = 'skopeo';
const SKOPEO_TIMEOUT_MS = 60_000;
const LAYOUT_REF = 'layout';

interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], timeout: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      const extra = error && typeof error.code !== 'number' ? `\n${error.message}` : '';
      resolve({ exitCode: code, stdout, stderr: `${stderr}${extra}` });
    });
  });
}

function credentialArgs(reg: TestRegistry, side: 'src' | 'dest'): string[] {
  if (!reg.credentials) return [`--${side}-no-creds`];
  return [`--${side}-creds`, `${reg.credentials.username}:${reg.credentials.password}`];
}

function reference(reg: TestRegistry, repository: string, tagOrDigest: string): string {
  const sep = tagOrDigest.startsWith('sha256:') ? '@' : ':';
  return `docker://${reg.host}/${repository}${sep}${tagOrDigest}`;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-skopeo-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function layoutBlobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

/** Checks that every blob reachable from the layout's index.json is present with its digest and size. */
async function verifyLayout(dir: string): Promise<string | undefined> {
  const pending: Descriptor[] = [];
  const top = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  pending.push(...(top.manifests ?? []));
  if (pending.length === 0) return 'the copied layout has no manifests';
  for (let d = pending.pop(); d !== undefined; d = pending.pop()) {
    let data: Buffer;
    try {
      data = await readFile(layoutBlobPath(dir, d.digest));
    } catch {
      return `blob ${d.digest} missing after copy`;
    }
    if (data.length !== d.size || sha256Digest(data) !== d.digest) {
      return `blob ${d.digest} incomplete after copy (${data.length} of ${d.size} bytes)`;
    }
    if (d.mediaType === MediaTypes.ociIndex || d.mediaType === MediaTypes.dockerList) {
      const index = JSON.parse(data.toString('utf8')) as { manifests?: Descriptor[] };
      pending.push(...(index.manifests ?? []));
    } else if (d.mediaType === MediaTypes.ociManifest || d.mediaType === MediaTypes.dockerManifest) {
      const manifest = JSON.parse(data.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
      if (manifest.config) pending.push(manifest.config);
      pending.push(...(manifest.layers ?? []));
    }
  }
  return undefined;
}

/** Pulls every platform of an image with skopeo into a scratch OCI layout; ok only if nothing was missing. */
export async function skopeoPull(
  reg: TestRegistry,
  repository: string,
  tag: string,
): Promise<{ ok: boolean; error?: string }> {
  return withTempDir(async (dir) => {
    const res = await run(
      SKOPEO_BINARY,
      [
        '--insecure-policy',
        'copy',
        '--all',
        '--retry-times',
        '0',
        '--src-tls-verify=false',
        ...credentialArgs(reg, 'src'),
        reference(reg, repository, tag),
        `oci:${dir}:${LAYOUT_REF}`,
      ],
      SKOPEO_TIMEOUT_MS,
    );
    if (res.exitCode !== 0) return { ok: false, error: res.stderr.trim() || `skopeo exited ${res.exitCode}` };
    const problem = await verifyLayout(dir);
    return problem ? { ok: false, error: problem } : { ok: true };
  });
}

class LayoutWriter {
  constructor(readonly dir: string) {}

  async init(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(this.dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  async blob(data: Uint8Array): Promise<string> {
    const digest = sha256Digest(data);
    await writeFile(layoutBlobPath(this.dir, digest), data);
    return digest;
  }

  async image(platform: Platform, layerSizes: number[], created: string): Promise<PushedImage> {
    const layers = layerSizes.map(randomGzipBlob);
    const config = encodeJson(imageConfig({ created, platform, layers }));
    const configDescriptor = {
      mediaType: MediaTypes.ociConfig,
      digest: await this.blob(config),
      size: config.length,
    };
    const layerDescriptors: Descriptor[] = [];
    for (const layer of layers) {
      layerDescriptors.push({
        mediaType: MediaTypes.ociLayerGzip,
        digest: await this.blob(layer),
        size: layer.length,
      });
    }
    const manifest = encodeJson({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: configDescriptor,
      layers: layerDescriptors,
    });
    return {
      digest: await this.blob(manifest),
      manifest,
      mediaType: MediaTypes.ociManifest,
      config: { digest: configDescriptor.digest, size: configDescriptor.size },
      layers: layerDescriptors.map((l) => ({ digest: l.digest, size: l.size })),
      platform,
    };
  }

  async finish(top: { mediaType: string; digest: string; size: number }): Promise<void> {
    const index = {
      schemaVersion: 2,
      manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': LAYOUT_REF } }],
    };
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index));
  }
}

async function skopeoPushLayout(
  reg: TestRegistry,
  dir: string,
  repository: string,
  tag: string,
  expectedDigest: string,
): Promise<void> {
  const res = await run(
    SKOPEO_BINARY,
    [
      '--insecure-policy',
      'copy',
      '--all',
      '--preserve-digests',
      '--retry-times',
      '0',
      '--dest-tls-verify=false',
      ...credentialArgs(reg, 'dest'),
      `oci:${dir}:${LAYOUT_REF}`,
      reference(reg, repository, tag),
    ],
    SKOPEO_TIMEOUT_MS,
  );
  if (res.exitCode !== 0) {
    throw new Error(`skopeo push to ${repository}:${tag} failed (${res.exitCode}): ${res.stderr.trim()}`);
  }
  const served = await headManifest(reg, repository, tag);
  if (served !== expectedDigest) {
    throw new Error(`${repository}:${tag} resolves to ${served}, skopeo was given ${expectedDigest}`);
  }
}

/** Builds a multi-platform OCI image index on disk and pushes it with `skopeo copy --all`. */
export async function skopeoPushMultiArch(
  reg: TestRegistry,
  repository: string,
  tag: string,
  platforms: Platform[],
  opts: { layerSize?: number; created?: string } = {},
): Promise<{ digest: string; children: string[]; images: PushedImage[]; manifest: Uint8Array }> {
  return withTempDir(async (dir) => {
    const layout = new LayoutWriter(dir);
    await layout.init();
    const created = opts.created ?? new Date().toISOString();
    const images: PushedImage[] = [];
    for (const platform of platforms) {
      images.push(await layout.image(platform, [opts.layerSize ?? 1024], created));
    }
    const manifest = encodeJson({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: images.map((image) => ({
        mediaType: image.mediaType,
        digest: image.digest,
        size: image.manifest.length,
        platform: image.platform,
      })),
    });
    const digest = await layout.blob(manifest);
    await layout.finish({ mediaType: MediaTypes.ociIndex, digest, size: manifest.length });
    await skopeoPushLayout(reg, dir, repository, tag, digest);
    return { digest, children: images.map((i) => i.digest), images, manifest };
  });
}

/** Builds a single-platform OCI image on disk and pushes it with skopeo. */
export async function skopeoPushImage(
  reg: TestRegistry,
  repository: string,
  tag: string,
  opts: { layerSizes?: number[]; platform?: Platform; created?: string } = {},
): Promise<PushedImage> {
  return withTempDir(async (dir) => {
    const layout = new LayoutWriter(dir);
    await layout.init();
    const image = await layout.image(
      opts.platform ?? { os: 'linux', architecture: 'amd64' },
      opts.layerSizes ?? [1024],
      opts.created ?? new Date().toISOString(),
    );
    await layout.finish({ mediaType: image.mediaType, digest: image.digest, size: image.manifest.length });
    await skopeoPushLayout(reg, dir, repository, tag, image.digest);
    return image;
  });
}
