import { randomBytes } from 'node:crypto';
import { type Dispatcher, request } from 'undici';
import {
  type Descriptor,
  encodeJson,
  imageConfig,
  MANIFEST_ACCEPT,
  MediaTypes,
  type Platform,
  randomGzipBlob,
  sha256Digest,
} from './blobs.js';
import { registryDispatcher, type TestRegistry } from './registry.js';

export { MANIFEST_ACCEPT, MediaTypes, type Platform, randomGzipBlob, sha256Digest } from './blobs.js';

export interface PushedImage {
  digest: string;
  manifest: Uint8Array;
  mediaType: string;
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
  platform?: Platform;
}

export interface PushedIndex {
  digest: string;
  manifest: Uint8Array;
  mediaType: string;
}

export interface PushImageOptions {
  layers?: Uint8Array[];
  layerSizes?: number[];
  created?: string;
  platform?: Platform;
  format?: 'oci' | 'docker';
  subject?: { digest: string; size: number; mediaType: string };
  configMediaType?: string;
  /** Media type of every layer; defaults to the format's tar+gzip type. */
  layerMediaType?: string;
  layerAnnotations?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RegistryResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

interface Challenge {
  scheme: string;
  params: Map<string, string>;
}

/** Parses one `WWW-Authenticate` challenge: `Scheme k="v",k2="v2"`. */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (!match?.[1]) return undefined;
  const params = new Map<string, string>();
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (const m of (match[2] ?? '').matchAll(re)) {
    if (m[1]) params.set(m[1].toLowerCase(), (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
  }
  return { scheme: match[1].toLowerCase(), params };
}

interface AuthState {
  scheme?: 'basic' | 'bearer';
  tokens: Map<string, { token: string; expiresAt: number }>;
}

const authStates = new WeakMap<TestRegistry, AuthState>();

function authState(reg: TestRegistry): AuthState {
  let state = authStates.get(reg);
  if (!state) {
    state = { tokens: new Map() };
    authStates.set(reg, state);
  }
  return state;
}

function basicHeader(reg: TestRegistry): string {
  if (!reg.credentials) throw new Error('the registry asked for credentials but has none');
  const { username, password } = reg.credentials;
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

async function fetchToken(reg: TestRegistry, challenge: Challenge, scope: string): Promise<string> {
  const realm = challenge.params.get('realm');
  if (!realm) throw new Error('Bearer challenge without realm');
  const url = new URL(realm);
  const service = challenge.params.get('service');
  if (service) url.searchParams.set('service', service);
  for (const s of scope.split(' ').filter((x) => x.length > 0)) url.searchParams.append('scope', s);
  const res = await request(url, { headers: { authorization: basicHeader(reg) } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`token endpoint answered ${res.statusCode}: ${text}`);
  const json = JSON.parse(text) as { token?: string; access_token?: string; expires_in?: number };
  const token = json.token ?? json.access_token;
  if (!token) throw new Error('token endpoint answered without a token');
  const lifetime = Math.max(10, (json.expires_in ?? 60) - 10);
  authState(reg).tokens.set(scope.split(' ')[0] ?? scope, { token, expiresAt: Date.now() + lifetime * 1000 });
  return token;
}

function cachedToken(reg: TestRegistry, scope: string): string | undefined {
  const entry = authState(reg).tokens.get(scope);
  return entry && entry.expiresAt > Date.now() ? entry.token : undefined;
}

function headerValue(headers: RegistryResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * One request to the registry with credentials, answering a Basic or Bearer challenge once.
 * `scope` is the token scope to ask for up front (e.g. `repository:foo:pull,push`).
 */
export async function registryRequest(
  reg: TestRegistry,
  method: Dispatcher.HttpMethod,
  pathOrUrl: string,
  opts: { scope?: string; headers?: Record<string, string>; body?: Uint8Array | string } = {},
): Promise<RegistryResponse> {
  const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${reg.url}${pathOrUrl}`;
  const state = authState(reg);
  const send = async (authorization: string | undefined): Promise<RegistryResponse> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (authorization) headers.authorization = authorization;
    const res = await request(url, {
      method,
      headers,
      body: opts.body === undefined ? undefined : Buffer.from(opts.body),
      dispatcher: registryDispatcher(reg),
    });
    const body = new Uint8Array(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  };

  let authorization: string | undefined;
  if (state.scheme === 'basic') authorization = basicHeader(reg);
  if (state.scheme === 'bearer' && opts.scope) {
    const token = cachedToken(reg, opts.scope);
    if (token) authorization = `Bearer ${token}`;
  }
  const first = await send(authorization);
  if (first.status !== 401 || !reg.credentials) return first;

  const challenge = parseChallenge(headerValue(first.headers, 'www-authenticate') ?? '');
  if (challenge?.scheme === 'basic') {
    state.scheme = 'basic';
    return send(basicHeader(reg));
  }
  if (challenge?.scheme === 'bearer') {
    state.scheme = 'bearer';
    const asked = challenge.params.get('scope');
    const scope = [opts.scope, asked !== opts.scope ? asked : undefined].filter((s) => s).join(' ');
    const token = await fetchToken(reg, challenge, scope);
    return send(`Bearer ${token}`);
  }
  return first;
}

function fail(what: string, res: RegistryResponse): never {
  throw new Error(`${what}: HTTP ${res.status} ${Buffer.from(res.body).toString('utf8').slice(0, 500)}`);
}

function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

/**
 * Uploads a blob unless the repository has it; `fresh`: without asking first, for a blob the repository
 * cannot have yet.
 */
export async function uploadBlob(
  reg: TestRegistry,
  repository: string,
  data: Uint8Array,
  opts: { fresh?: boolean } = {},
): Promise<string> {
  const digest = sha256Digest(data);
  const scope = pushScope(repository);
  if (!opts.fresh) {
    const head = await registryRequest(reg, 'HEAD', `/v2/${repository}/blobs/${digest}`, { scope });
    if (head.status === 200) return digest;
  }
  const started = await registryRequest(reg, 'POST', `/v2/${repository}/blobs/uploads/`, { scope });
  if (started.status !== 202) fail(`starting upload to ${repository}`, started);
  const location = headerValue(started.headers, 'location');
  if (!location) throw new Error('upload started without a Location');
  const target = new URL(location, reg.url);
  target.searchParams.set('digest', digest);
  const put = await registryRequest(reg, 'PUT', target.toString(), {
    scope,
    headers: { 'content-type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 201) fail(`uploading ${digest} to ${repository}`, put);
  return digest;
}

export async function putManifest(
  reg: TestRegistry,
  repository: string,
  reference: string,
  mediaType: string,
  body: Uint8Array | string,
): Promise<string> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const res = await registryRequest(reg, 'PUT', `/v2/${repository}/manifests/${reference}`, {
    scope: pushScope(repository),
    headers: { 'content-type': mediaType },
    body: bytes,
  });
  if (res.status !== 201) fail(`putting manifest ${repository}:${reference}`, res);
  const expected = sha256Digest(bytes);
  const answered = headerValue(res.headers, 'docker-content-digest');
  if (answered !== expected) {
    throw new Error(`registry stored ${repository}:${reference} as ${answered}, body hashes to ${expected}`);
  }
  return expected;
}

export async function pushImage(
  reg: TestRegistry,
  repository: string,
  tag: string | undefined,
  opts: PushImageOptions = {},
): Promise<PushedImage> {
  const format = opts.subject ? 'oci' : (opts.format ?? 'docker');
  const oci = format === 'oci';
  const layers = opts.layers ?? (opts.layerSizes ?? [1024]).map(randomGzipBlob);
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const config = encodeJson(
    imageConfig({ created: opts.created ?? new Date().toISOString(), platform, layers }),
  );

  const layerMediaType = opts.layerMediaType ?? (oci ? MediaTypes.ociLayerGzip : MediaTypes.dockerLayerGzip);
  const configDescriptor: Descriptor = {
    mediaType: opts.configMediaType ?? (oci ? MediaTypes.ociConfig : MediaTypes.dockerConfig),
    digest: await uploadBlob(reg, repository, config),
    size: config.length,
  };
  const layerDescriptors: Descriptor[] = [];
  for (const layer of layers) {
    layerDescriptors.push({
      mediaType: layerMediaType,
      digest: await uploadBlob(reg, repository, layer),
      size: layer.length,
      ...(opts.layerAnnotations ? { annotations: opts.layerAnnotations } : {}),
    });
  }

  const mediaType = oci ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
  const manifest = encodeJson({
    schemaVersion: 2,
    mediaType,
    config: configDescriptor,
    layers: layerDescriptors,
    ...(opts.subject ? { subject: opts.subject } : {}),
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  });
  const digest = await putManifest(reg, repository, tag ?? sha256Digest(manifest), mediaType, manifest);
  return {
    digest,
    manifest,
    mediaType,
    config: { digest: configDescriptor.digest, size: configDescriptor.size },
    layers: layerDescriptors.map((l) => ({ digest: l.digest, size: l.size })),
    platform,
  };
}

/**
 * Pushes an OCI image index or a Docker manifest list over children already in the repository.
 * Without `format`, the list is Docker only when every child is a Docker manifest.
 */
export async function pushIndex(
  reg: TestRegistry,
  repository: string,
  tag: string | undefined,
  children: PushedImage[],
  opts: { format?: 'oci' | 'docker' } = {},
): Promise<PushedIndex> {
  const format =
    opts.format ?? (children.every((c) => c.mediaType === MediaTypes.dockerManifest) ? 'docker' : 'oci');
  const mediaType = format === 'oci' ? MediaTypes.ociIndex : MediaTypes.dockerList;
  const manifests = children.map((child) => {
    if (!child.platform) throw new Error(`child ${child.digest} has no platform`);
    const platform: Platform = { architecture: child.platform.architecture, os: child.platform.os };
    if (child.platform.variant) platform.variant = child.platform.variant;
    return { mediaType: child.mediaType, digest: child.digest, size: child.manifest.length, platform };
  });
  const manifest = encodeJson({ schemaVersion: 2, mediaType, manifests });
  const digest = await putManifest(reg, repository, tag ?? sha256Digest(manifest), mediaType, manifest);
  return { digest, manifest, mediaType };
}

const SIGNATURE_LAYER_TYPES = {
  sig: 'application/vnd.dev.cosign.simplesigning.v1+json',
  att: 'application/vnd.dsse.envelope.v1+json',
  sbom: 'text/spdx+json',
} as const;

/** The tag cosign stores a signature, attestation or SBOM under for a subject digest. */
export function cosignTag(subjectDigest: string, suffix: 'sig' | 'att' | 'sbom'): string {
  return `${subjectDigest.replace(':', '-')}.${suffix}`;
}

export async function pushSignature(
  reg: TestRegistry,
  repository: string,
  subjectDigest: string,
  suffix: 'sig' | 'att' | 'sbom',
): Promise<PushedImage> {
  const payload = encodeJson({
    critical: {
      identity: { 'docker-reference': `${reg.host}/${repository}` },
      image: { 'docker-manifest-digest': subjectDigest },
      type: `cosign container image ${suffix}`,
    },
    optional: null,
  });
  return pushImage(reg, repository, cosignTag(subjectDigest, suffix), {
    format: 'oci',
    layers: [payload],
    configMediaType: `application/vnd.dev.cosign.artifact.${suffix}.v1+json`,
    layerMediaType: SIGNATURE_LAYER_TYPES[suffix],
    layerAnnotations: { 'dev.cosignproject.cosign/signature': randomBytes(64).toString('base64') },
  });
}

/** HEAD a manifest with every manifest type accepted; the digest it resolves to, undefined on 404. */
export async function headManifest(
  reg: TestRegistry,
  repository: string,
  reference: string,
): Promise<string | undefined> {
  const res = await registryRequest(reg, 'HEAD', `/v2/${repository}/manifests/${reference}`, {
    scope: `repository:${repository}:pull`,
    headers: { accept: MANIFEST_ACCEPT },
  });
  if (res.status === 404) return undefined;
  if (res.status !== 200) fail(`HEAD manifest ${repository}:${reference}`, res);
  return headerValue(res.headers, 'docker-content-digest');
}

/** GET a manifest with every manifest type accepted; undefined on 404. */
export async function getManifest(
  reg: TestRegistry,
  repository: string,
  reference: string,
): Promise<{ digest: string; mediaType: string; body: Uint8Array } | undefined> {
  const res = await registryRequest(reg, 'GET', `/v2/${repository}/manifests/${reference}`, {
    scope: `repository:${repository}:pull`,
    headers: { accept: MANIFEST_ACCEPT },
  });
  if (res.status === 404) return undefined;
  if (res.status !== 200) fail(`GET manifest ${repository}:${reference}`, res);
  return {
    digest: sha256Digest(res.body),
    mediaType: headerValue(res.headers, 'content-type') ?? '',
    body: res.body,
  };
}

/** DELETE a manifest by digest; the HTTP status (202 deleted, 404 gone, 405 refused). */
export async function deleteManifest(reg: TestRegistry, repository: string, digest: string): Promise<number> {
  const res = await registryRequest(reg, 'DELETE', `/v2/${repository}/manifests/${digest}`, {
    scope: `repository:${repository}:delete`,
  });
  return res.status;
}
