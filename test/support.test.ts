import { rm, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  deleteManifest,
  getManifest,
  headManifest,
  MediaTypes,
  parseChallenge,
  pushImage,
  pushIndex,
  pushSignature,
  putManifest,
  randomGzipBlob,
  registryRequest,
  sha256Digest,
} from './support/images.js';
import { type StartRegistryOptions, startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull, skopeoPushImage, skopeoPushMultiArch } from './support/skopeo.js';
import {
  blobDataPath,
  blobSizes,
  freedBytes,
  revisionLinkPath,
  setRevisionPushTime,
  setTagPushTime,
  startUpload,
  tagLinkPath,
  uploadsInProgress,
} from './support/storage.js';

const started: TestRegistry[] = [];

async function start(opts?: StartRegistryOptions): Promise<TestRegistry> {
  const reg = await startRegistry(opts);
  started.push(reg);
  return reg;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((reg) => reg.stop()));
});

afterAll(async () => {
  await Promise.all(started.splice(0).map((reg) => reg.stop()));
});

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

describe('startRegistry', () => {
  it('serves /v2/ without credentials when auth is none', async () => {
    const reg = await start();
    const res = await request(`${reg.url}/v2/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    expect(reg.url).toBe(`http://${reg.host}`);
    expect(reg.credentials).toBeUndefined();
    expect((await stat(reg.configPath)).isFile()).toBe(true);
  });

  it('basic: challenges anonymous requests and accepts the generated credentials', async () => {
    const reg = await start({ auth: 'basic' });
    const anonymous = await request(`${reg.url}/v2/`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    expect(String(anonymous.headers['www-authenticate'])).toMatch(/^Basic /);

    const creds = reg.credentials;
    expect(creds?.username).toBe('janitor');
    if (!creds) throw new Error('no credentials');
    const good = await request(`${reg.url}/v2/`, {
      headers: { authorization: basic(creds.username, creds.password) },
    });
    await good.body.dump();
    expect(good.statusCode).toBe(200);

    const bad = await request(`${reg.url}/v2/`, {
      headers: { authorization: basic(creds.username, 'wrong') },
    });
    await bad.body.dump();
    expect(bad.statusCode).toBe(401);
  });

  it('token: challenges with a Bearer realm whose tokens the registry accepts', async () => {
    const reg = await start({ auth: 'token' });
    const creds = reg.credentials;
    if (!creds) throw new Error('no credentials');

    const anonymous = await request(`${reg.url}/v2/_catalog`);
    await anonymous.body.dump();
    expect(anonymous.statusCode).toBe(401);
    const challenge = parseChallenge(String(anonymous.headers['www-authenticate']));
    expect(challenge?.scheme).toBe('bearer');
    const realm = challenge?.params.get('realm');
    const service = challenge?.params.get('service');
    expect(challenge?.params.get('scope')).toBe('registry:catalog:*');
    if (!realm || !service) throw new Error('incomplete challenge');

    const tokenUrl = new URL(realm);
    tokenUrl.searchParams.set('service', service);
    tokenUrl.searchParams.set('scope', 'registry:catalog:*');

    const refused = await request(tokenUrl, { headers: { authorization: basic(creds.username, 'wrong') } });
    await refused.body.dump();
    expect(refused.statusCode).toBe(401);
    const unauthenticated = await request(tokenUrl);
    await unauthenticated.body.dump();
    expect(unauthenticated.statusCode).toBe(401);
    expect(reg.tokenRequests).toEqual([]);

    const issued = await request(tokenUrl, {
      headers: { authorization: basic(creds.username, creds.password) },
    });
    expect(issued.statusCode).toBe(200);
    const body = (await issued.body.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    const claims = JSON.parse(Buffer.from(body.token.split('.')[1] ?? '', 'base64url').toString()) as {
      aud: string;
      access: unknown;
    };
    expect(claims.aud).toBe(service);
    expect(claims.access).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    expect(reg.tokenRequests).toEqual(['registry:catalog:*']);

    const catalog = await request(`${reg.url}/v2/_catalog`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    expect(catalog.statusCode).toBe(200);
    expect(await catalog.body.json()).toEqual({ repositories: [] });

    const forged = `${body.token.slice(0, body.token.lastIndexOf('.'))}.${Buffer.alloc(64).toString('base64url')}`;
    const rejected = await request(`${reg.url}/v2/_catalog`, {
      headers: { authorization: `Bearer ${forged}` },
    });
    await rejected.body.dump();
    expect(rejected.statusCode).toBe(401);
  });

  it('token: grants exactly the requested actions', async () => {
    const reg = await start({ auth: 'token' });
    const creds = reg.credentials;
    if (!creds) throw new Error('no credentials');
    const image = await pushImage(reg, 'team/app', 'v1');
    const ping = await request(`${reg.url}/v2/`);
    await ping.body.dump();
    const challenge = parseChallenge(String(ping.headers['www-authenticate']));
    const realm = challenge?.params.get('realm');
    if (!realm) throw new Error('no realm');
    const tokenUrl = new URL(realm);
    tokenUrl.searchParams.set('service', challenge?.params.get('service') ?? '');
    tokenUrl.searchParams.set('scope', 'repository:team/app:pull');
    const issued = await request(tokenUrl, {
      headers: { authorization: basic(creds.username, creds.password) },
    });
    const { token } = (await issued.body.json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };

    const head = await request(`${reg.url}/v2/team/app/manifests/v1`, { method: 'HEAD', headers: auth });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    const del = await request(`${reg.url}/v2/team/app/manifests/${image.digest}`, {
      method: 'DELETE',
      headers: auth,
    });
    await del.body.dump();
    expect(del.statusCode).toBe(401);
    expect(String(del.headers['www-authenticate'])).toContain('scope="repository:team/app:delete"');

    expect(await deleteManifest(reg, 'team/app', image.digest)).toBe(202);
    expect(reg.tokenRequests.slice(-2)).toEqual(['repository:team/app:pull', 'repository:team/app:delete']);
    expect(await headManifest(reg, 'team/app', image.digest)).toBeUndefined();
  });

  it('honours deleteEnabled: false and readOnly', async () => {
    const noDelete = await start({ deleteEnabled: false });
    const image = await pushImage(noDelete, 'app', 'v1');
    expect(await deleteManifest(noDelete, 'app', image.digest)).toBe(405);
    expect(await headManifest(noDelete, 'app', 'v1')).toBe(image.digest);

    const readOnly = await start({ readOnly: true });
    await expect(pushImage(readOnly, 'app', 'v1')).rejects.toThrow(/HTTP 405/);
    await readOnly.restart({ readOnly: false });
    const pushed = await pushImage(readOnly, 'app', 'v1');
    await readOnly.restart({ readOnly: true });
    expect(await deleteManifest(readOnly, 'app', pushed.digest)).toBe(405);
    expect(await headManifest(readOnly, 'app', 'v1')).toBe(pushed.digest);
  });

  it('restart keeps the port, the data and the credentials', async () => {
    const reg = await start({ auth: 'basic' });
    const image = await pushImage(reg, 'team/app', 'v1', { layerSizes: [2048, 4096] });
    const url = reg.url;
    await reg.restart();
    expect(reg.url).toBe(url);
    expect(await headManifest(reg, 'team/app', 'v1')).toBe(image.digest);
    expect(await skopeoPull(reg, 'team/app', 'v1')).toEqual({ ok: true });
  });

  it('stop removes the temporary directory and frees the port', async () => {
    const reg = await startRegistry();
    await pushImage(reg, 'app', 'v1');
    await reg.stop();
    await expect(stat(reg.root)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(request(`${reg.url}/v2/`)).rejects.toThrow();
  });
});

describe('pushImage and pushIndex', () => {
  it.each(['none', 'basic', 'token'] as const)(
    'pushes over %s auth and skopeo pulls it completely',
    async (auth) => {
      const reg = await start({ auth });
      const image = await pushImage(reg, 'team/app', 'v1', { layerSizes: [100, 70_000] });
      expect(image.layers.map((l) => l.size)).toEqual([100, 70_000]);
      expect(image.mediaType).toBe(MediaTypes.dockerManifest);
      expect(sha256Digest(image.manifest)).toBe(image.digest);
      expect(await headManifest(reg, 'team/app', 'v1')).toBe(image.digest);
      expect(await skopeoPull(reg, 'team/app', 'v1')).toEqual({ ok: true });
      if (auth === 'token') expect(reg.tokenRequests).toContain('repository:team/app:pull');
    },
  );

  it('skopeoPull reports a layer missing from disk', async () => {
    const reg = await start();
    const image = await pushImage(reg, 'app', 'v1');
    const layer = image.layers[0];
    if (!layer) throw new Error('no layer');
    await rm(blobDataPath(reg, layer.digest));
    const pulled = await skopeoPull(reg, 'app', 'v1');
    expect(pulled.ok).toBe(false);
    expect(pulled.error).toBeTruthy();
  });

  it('builds OCI and Docker lists, untagged children, subjects and cosign tags', async () => {
    const reg = await start();
    const shared = randomGzipBlob(4096);
    const amd64 = await pushImage(reg, 'app', undefined, {
      format: 'oci',
      layers: [shared],
      platform: { os: 'linux', architecture: 'amd64' },
    });
    const arm64 = await pushImage(reg, 'app', undefined, {
      format: 'oci',
      layers: [shared, randomGzipBlob(512)],
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    expect(amd64.layers[0]?.digest).toBe(arm64.layers[0]?.digest);
    const index = await pushIndex(reg, 'app', 'multi', [amd64, arm64]);
    expect(index.mediaType).toBe(MediaTypes.ociIndex);
    expect(await headManifest(reg, 'app', 'multi')).toBe(index.digest);
    const tags = await registryRequest(reg, 'GET', '/v2/app/tags/list');
    expect(JSON.parse(Buffer.from(tags.body).toString())).toEqual({ name: 'app', tags: ['multi'] });

    const dockerChild = await pushImage(reg, 'app', undefined);
    const list = await pushIndex(reg, 'app', 'list', [dockerChild]);
    expect(list.mediaType).toBe(MediaTypes.dockerList);
    expect((await getManifest(reg, 'app', 'list'))?.digest).toBe(list.digest);
    expect(await skopeoPull(reg, 'app', 'list')).toEqual({ ok: true });

    const retagged = await pushImage(reg, 'app', 'v1', { created: '1970-01-01T00:00:00Z' });
    expect(await headManifest(reg, 'app', 'v1')).toBe(retagged.digest);
    const again = await putManifest(reg, 'app', 'v1-again', retagged.mediaType, retagged.manifest);
    expect(again).toBe(retagged.digest);
    expect(await headManifest(reg, 'app', 'v1-again')).toBe(retagged.digest);

    const sig = await pushSignature(reg, 'app', retagged.digest, 'sig');
    expect(await headManifest(reg, 'app', `sha256-${retagged.digest.slice(7)}.sig`)).toBe(sig.digest);
    const sigManifest = JSON.parse(Buffer.from(sig.manifest).toString()) as { config: { mediaType: string } };
    expect(sigManifest.config.mediaType).toBe('application/vnd.dev.cosign.artifact.sig.v1+json');

    const referrer = await pushImage(reg, 'app', undefined, {
      subject: { digest: retagged.digest, size: retagged.manifest.length, mediaType: retagged.mediaType },
    });
    const stored = await getManifest(reg, 'app', referrer.digest);
    expect(stored?.mediaType).toBe(MediaTypes.ociManifest);
    const body = JSON.parse(Buffer.from(stored?.body ?? new Uint8Array()).toString()) as {
      subject?: { digest: string };
    };
    expect(body.subject?.digest).toBe(retagged.digest);
  });
});

describe('skopeo pushes', () => {
  it('pushes a multi-arch index whose children resolve and pull', async () => {
    const reg = await start({ auth: 'token' });
    const pushed = await skopeoPushMultiArch(reg, 'team/multi', 'latest', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    expect(pushed.children).toHaveLength(2);
    const index = await getManifest(reg, 'team/multi', 'latest');
    expect(index?.digest).toBe(pushed.digest);
    expect(index?.mediaType).toBe(MediaTypes.ociIndex);
    const listed = JSON.parse(Buffer.from(index?.body ?? new Uint8Array()).toString()) as {
      manifests: { digest: string; platform: { architecture: string } }[];
    };
    expect(listed.manifests.map((m) => m.digest)).toEqual(pushed.children);
    expect(listed.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    for (const child of pushed.children) {
      expect(await headManifest(reg, 'team/multi', child)).toBe(child);
    }
    expect(await skopeoPull(reg, 'team/multi', 'latest')).toEqual({ ok: true });
  });

  it('pushes a single image that resolves by tag', async () => {
    const reg = await start({ auth: 'basic' });
    const image = await skopeoPushImage(reg, 'single', 'v1', { layerSizes: [300, 600] });
    expect(image.mediaType).toBe(MediaTypes.ociManifest);
    expect(await headManifest(reg, 'single', 'v1')).toBe(image.digest);
    expect(await skopeoPull(reg, 'single', image.digest)).toEqual({ ok: true });
  });
});

describe('storage helpers', () => {
  it('garbage-collect after a DELETE frees exactly the deleted image’s unique blobs', async () => {
    const reg = await start();
    const shared = randomGzipBlob(8192);
    const kept = await pushImage(reg, 'app', 'kept', { layers: [shared, randomGzipBlob(1500)] });
    const doomed = await pushImage(reg, 'app', 'doomed', { layers: [shared, randomGzipBlob(3000)] });
    const other = await pushImage(reg, 'other', 'v1', { layers: [randomGzipBlob(700)] });
    const doomedLayer = doomed.layers[1];
    if (!doomedLayer) throw new Error('no layer');

    const before = await blobSizes(reg);
    expect(before.get(doomed.digest)).toBe(doomed.manifest.length);
    expect(before.get(doomedLayer.digest)).toBe(3000);

    const dryRun = await reg.garbageCollect({ dryRun: true });
    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout).toMatch(/0 blobs and 0 manifests eligible for deletion/);
    expect(freedBytes(before, await blobSizes(reg))).toBe(0);

    expect(await deleteManifest(reg, 'app', doomed.digest)).toBe(202);
    const gc = await reg.garbageCollect();
    expect(gc.exitCode).toBe(0);
    const after = await blobSizes(reg);
    expect(freedBytes(before, after)).toBe(doomed.manifest.length + doomed.config.size + doomedLayer.size);
    expect([...before.keys()].filter((d) => !after.has(d)).sort()).toEqual(
      [doomed.digest, doomed.config.digest, doomedLayer.digest].sort(),
    );
    for (const digest of [
      kept.digest,
      kept.config.digest,
      ...kept.layers.map((l) => l.digest),
      other.digest,
    ]) {
      expect(after.has(digest)).toBe(true);
    }

    await reg.restart();
    expect(await skopeoPull(reg, 'app', 'kept')).toEqual({ ok: true });
    expect(await skopeoPull(reg, 'other', 'v1')).toEqual({ ok: true });
  });

  it('sets push times on revision and tag links', async () => {
    const reg = await start();
    const image = await pushImage(reg, 'team/app', 'v1');
    const when = new Date('2020-02-03T04:05:06Z');
    await setRevisionPushTime(reg, 'team/app', image.digest, when);
    await setTagPushTime(reg, 'team/app', 'v1', new Date(when.getTime() + 1000));
    expect((await stat(revisionLinkPath(reg, 'team/app', image.digest))).mtime.toISOString()).toBe(
      '2020-02-03T04:05:06.000Z',
    );
    expect((await stat(tagLinkPath(reg, 'team/app', 'v1'))).mtime.toISOString()).toBe(
      '2020-02-03T04:05:07.000Z',
    );
  });

  it('leaves an upload in progress under _uploads', async () => {
    const reg = await start({ auth: 'token' });
    await pushImage(reg, 'app', 'v1');
    const id = await startUpload(reg, 'app');
    expect(await uploadsInProgress(reg, 'app')).toEqual([id]);
  });
});

describe('randomGzipBlob', () => {
  it.each([23, 24, 100, 1024, 65_558, 65_559, 65_560, 131_098, 200_000])(
    'is valid gzip of exactly %i bytes',
    (size) => {
      const blob = randomGzipBlob(size);
      expect(blob.length).toBe(size);
      expect(() => gunzipSync(blob)).not.toThrow();
    },
  );

  it('refuses sizes too small for a gzip member', () => {
    expect(() => randomGzipBlob(22)).toThrow(/at least 23/);
  });
});
