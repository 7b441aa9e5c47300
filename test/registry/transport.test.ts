import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createRegistryClient, type RegistryClientOptions } from '../../lambda/registry/client.js';
import {
  BodyTooLargeError,
  DigestMismatchError,
  RegistryHttpError,
  RegistryRequestError,
  RegistryResponseError,
} from '../../lambda/registry/errors.js';
import { json, type StandIn, type StandInHandler, startStandIn } from './stand-in.js';

type Digest = `sha256:${string}`;

const digestOf = (data: string | Uint8Array): Digest =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf('{}'), size: 2 },
  layers: [],
});
const MANIFEST_DIGEST = digestOf(MANIFEST);

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

const servers: StandIn[] = [];
const clients: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(handler: StandInHandler): Promise<StandIn> {
  const server = await startStandIn(handler);
  servers.push(server);
  return server;
}

function clientFor(server: StandIn, options: Partial<RegistryClientOptions> = {}) {
  const client = createRegistryClient({
    url: server.origin,
    concurrency: 2,
    retries: 2,
    retryMinDelayMs: 1,
    retryMaxDelayMs: 5_000,
    ...options,
  });
  clients.push(client);
  return client;
}

describe('retries', () => {
  it('waits for Retry-After on 503 and then succeeds', async () => {
    // Prepare
    const server = await serve((_req, res, index) => {
      if (index === 0) json(res, 503, { errors: [] }, { 'retry-after': '1' });
      else json(res, 200, { repositories: ['app'] });
    });
    const client = clientFor(server);

    // Act
    const repositories = await client.listRepositories();

    // Assess
    expect(repositories).toEqual(['app']);
    expect(server.requests).toHaveLength(2);
    const [first, second] = server.requests;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('gives up after the configured retries on 429 and reports the status', async () => {
    // Prepare
    const server = await serve((_req, res) =>
      json(res, 429, { errors: [{ code: 'TOOMANYREQUESTS', message: 'slow down' }] }),
    );
    const client = clientFor(server, { retries: 2 });

    // Act
    const attempt = client.listTags('app');

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(RegistryHttpError);
    await expect(attempt).rejects.toMatchObject({
      code: 'RJ_HTTP',
      status: 429,
      registryCode: 'TOOMANYREQUESTS',
      method: 'GET',
      path: '/v2/app/tags/list',
    });
    expect(server.requests).toHaveLength(3);
  });

  it('retries a request whose connection was reset', async () => {
    // Prepare
    const server = await serve((req, res, index) => {
      if (index === 0) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': MANIFEST_DIGEST,
      });
      res.end(MANIFEST);
    });
    const client = clientFor(server);

    // Act
    const manifest = await client.getManifest('app', 'v1');

    // Assess
    expect(manifest?.digest).toBe(MANIFEST_DIGEST);
    expect(server.requests).toHaveLength(2);
  });

  it('sends a request again whose body broke off after the headers, though the registry cannot resume it', async () => {
    // Prepare
    const server = await serve((req, res, index) => {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': Buffer.byteLength(MANIFEST),
        'docker-content-digest': MANIFEST_DIGEST,
      });
      if (index === 0) res.write(MANIFEST.slice(0, 40), () => req.socket.resetAndDestroy());
      else res.end(MANIFEST);
    });
    const client = clientFor(server);

    // Act
    const manifest = await client.getManifest('app', 'v1');

    // Assess
    expect(manifest?.digest).toBe(MANIFEST_DIGEST);
    expect(server.requests.map((request) => request.method)).toEqual(['GET', 'GET']);
  });

  it('sends a request again that timed out', async () => {
    // Prepare
    const server = await serve((_req, res, index) => {
      if (index > 0) json(res, 200, { name: 'app', tags: ['v1'] });
    });
    const client = clientFor(server, { requestTimeoutMs: 200 });

    // Act
    const tags = await client.listTags('app');

    // Assess
    expect(tags).toEqual(['v1']);
    expect(server.requests).toHaveLength(2);
  });

  it('retries a DELETE answered 502 (deleting a manifest by digest is idempotent)', async () => {
    // Prepare
    const server = await serve((_req, res, index) => {
      res.writeHead(index === 0 ? 502 : 202).end();
    });
    const client = clientFor(server);

    // Act
    const outcome = await client.deleteManifest('app', MANIFEST_DIGEST);

    // Assess
    expect(outcome).toBe('deleted');
    expect(server.requests.map((request) => request.method)).toEqual(['DELETE', 'DELETE']);
  });

  it('does not retry a 500 and reports the registry error code, method and path', async () => {
    // Prepare
    const server = await serve((_req, res) =>
      json(res, 500, { errors: [{ code: 'UNKNOWN', message: 'unknown error\nwith a newline' }] }),
    );
    const client = clientFor(server, { credentials: { username: 'janitor', password: 'secret-pass' } });

    // Act
    const error = await client.resolveManifest('app', 'v1').catch((e: unknown) => e);
    const getError = await client.getManifest('app', 'v1').catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({
      code: 'RJ_HTTP',
      status: 500,
      method: 'HEAD',
      path: '/v2/app/manifests/v1',
    });
    expect(getError).toMatchObject({ code: 'RJ_HTTP', status: 500, registryCode: 'UNKNOWN' });
    expect((getError as Error).message).toBe(
      'GET /v2/app/manifests/v1 answered 500 (UNKNOWN: unknown error with a newline)',
    );
    expect((getError as Error).message).not.toContain('secret-pass');
    expect(server.requests).toHaveLength(2);
  });
});

describe('deadline and timeouts', () => {
  it('stops waiting for a retry when the deadline fires', async () => {
    // Prepare
    const deadline = new AbortController();
    const server = await serve((_req, res) => {
      json(res, 503, { errors: [] }, { 'retry-after': '30' });
      setImmediate(() => deadline.abort());
    });
    const client = clientFor(server, { deadline: deadline.signal, retryMaxDelayMs: 30_000 });
    const started = performance.now();

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RegistryRequestError);
    expect(error).toMatchObject({ code: 'RJ_ABORTED' });
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('times out a registry that never answers', async () => {
    // Prepare
    const server = await serve(() => undefined);
    const client = clientFor(server, { requestTimeoutMs: 200, retries: 0 });

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RegistryRequestError);
    expect(error).toMatchObject({ code: 'RJ_TIMEOUT' });
    expect((error as Error).message).toContain(`GET ${server.origin}/v2/_catalog?n=1000`);
  });

  it('reports a registry that is not listening as a network error', async () => {
    // Prepare
    const server = await serve(() => undefined);
    const origin = server.origin;
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const client = createRegistryClient({ url: origin, concurrency: 1, retries: 1, retryMinDelayMs: 1 });
    clients.push(client);

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RegistryRequestError);
    expect(error).toMatchObject({ code: 'RJ_NETWORK' });
    expect((error as Error).message).toContain('ECONNREFUSED');
  });
});

describe('body limits and digests', () => {
  it('stops reading a manifest past 4 MiB even without a Content-Length', async () => {
    // Prepare
    let sent = 0;
    let finished = false;
    const server = await serve(async (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      while (sent < 64 * 1024 * 1024 && !res.destroyed) {
        sent += chunk.length;
        if (!res.write(chunk)) await drainedOrClosed(res);
      }
      finished = !res.destroyed;
      res.end();
    });
    const client = clientFor(server);

    // Act
    const error = await client.getManifest('app', 'huge').catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error).toMatchObject({ code: 'RJ_BODY_TOO_LARGE', limit: 4 * 1024 * 1024 });
    expect((error as Error).message).toContain('manifest app@huge is larger than the limit of 4194304 bytes');
    expect(finished).toBe(false);
  });

  it('refuses a config blob whose Content-Length is over maxBytes without reading it', async () => {
    // Prepare
    const blob = Buffer.alloc(2048, 0x7b);
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    const client = clientFor(server);

    // Act
    const error = await client.getBlob('app', digestOf(blob), 1024).catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ code: 'RJ_BODY_TOO_LARGE', limit: 1024 });
  });

  it('rejects a manifest whose body does not hash to Docker-Content-Digest', async () => {
    // Prepare
    const server = await serve((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': digestOf('something else'),
      });
      res.end(MANIFEST);
    });
    const client = clientFor(server);

    // Act
    const error = await client.getManifest('app', 'v1').catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error).toMatchObject({
      code: 'RJ_DIGEST_MISMATCH',
      expected: digestOf('something else'),
      actual: MANIFEST_DIGEST,
    });
  });

  it('rejects a manifest fetched by digest whose body hashes to something else', async () => {
    // Prepare
    const asked = digestOf('the manifest that was asked for');
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST);
    });
    const client = clientFor(server);

    // Act
    const manifestError = await client.getManifest('app', asked).catch((e: unknown) => e);
    const blobError = await client.getBlob('app', asked, 1024).catch((e: unknown) => e);

    // Assess
    expect(manifestError).toMatchObject({
      code: 'RJ_DIGEST_MISMATCH',
      expected: asked,
      actual: MANIFEST_DIGEST,
    });
    expect(blobError).toMatchObject({ code: 'RJ_DIGEST_MISMATCH', expected: asked, actual: MANIFEST_DIGEST });
  });

  it('sends every manifest media type, and takes the media type from the body when Content-Type is generic', async () => {
    // Prepare
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(MANIFEST);
    });
    const client = clientFor(server);

    // Act
    const manifest = await client.getManifest('app', 'v1');

    // Assess
    expect(manifest?.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest?.digest).toBe(MANIFEST_DIGEST);
    expect(server.requests[0]?.accept?.split(/,\s*/)).toEqual([
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.docker.distribution.manifest.v2+json',
    ]);
  });

  it('validates the digest a HEAD answers, and hashes the body when HEAD sends none', async () => {
    // Prepare
    const server = await serve((req, res) => {
      if (req.url?.includes('/bad/')) {
        res.writeHead(200, { 'docker-content-digest': 'sha256:../../etc' }).end();
        return;
      }
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(MANIFEST);
    });
    const client = clientFor(server);

    // Act
    const bad = await client.resolveManifest('bad/app', 'v1').catch((e: unknown) => e);
    const resolved = await client.resolveManifest('good/app', 'v1');

    // Assess
    expect(bad).toBeInstanceOf(RegistryResponseError);
    expect(bad).toMatchObject({ code: 'RJ_BAD_RESPONSE' });
    expect(resolved).toBe(MANIFEST_DIGEST);
    expect(server.requests.slice(1).map((request) => request.method)).toEqual(['HEAD', 'GET']);
  });
});

describe('redirects', () => {
  it('fetches a blob redirected to another origin without sending it the credentials', async () => {
    // Prepare
    const blob = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const storage = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== 'Bearer static-token') {
        json(res, 401, { errors: [{ code: 'UNAUTHORIZED' }] });
        return;
      }
      res.writeHead(307, { location: `${storage.origin}/bucket/blob?X-Amz-Signature=abc` }).end();
    });
    const client = clientFor(registry, { credentials: { token: 'static-token' } });

    // Act
    const fetched = await client.getBlob('app', digestOf(blob), 1024);
    const size = await client.statBlob('app', digestOf(blob));

    // Assess
    expect(Buffer.from(fetched).equals(blob)).toBe(true);
    expect(size).toBe(blob.length);
    expect(registry.requests.map((request) => request.authorization)).toEqual([
      'Bearer static-token',
      'Bearer static-token',
    ]);
    expect(storage.requests.map((request) => [request.method, request.url, request.authorization])).toEqual([
      ['GET', '/bucket/blob?X-Amz-Signature=abc', undefined],
      ['HEAD', '/bucket/blob?X-Amz-Signature=abc', undefined],
    ]);
  });

  it('keeps Basic credentials on a same-origin redirect and drops them across origins', async () => {
    // Prepare
    const blob = Buffer.from('{}');
    const elsewhere = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': blob.length }).end(blob);
    });
    const registry = await serve((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end();
      } else if (req.url?.startsWith('/v2/')) {
        res.writeHead(302, { location: '/storage/blob' }).end();
      } else {
        res.writeHead(307, { location: `${elsewhere.origin}/blob` }).end();
      }
    });
    const client = clientFor(registry, { credentials: { username: 'janitor', password: 'pw' } });

    // Act
    const fetched = await client.getBlob('app', digestOf(blob), 1024);

    // Assess
    expect(Buffer.from(fetched).toString()).toBe('{}');
    expect(registry.requests.map((request) => [request.url, request.authorization?.split(' ')[0]])).toEqual([
      [`/v2/app/blobs/${digestOf(blob)}`, undefined],
      [`/v2/app/blobs/${digestOf(blob)}`, 'Basic'],
      ['/storage/blob', 'Basic'],
    ]);
    expect(elsewhere.requests.map((request) => request.authorization)).toEqual([undefined]);
  });
});

describe('pagination', () => {
  it('refuses a next-page link to another origin', async () => {
    // Prepare
    const other = await serve((_req, res) => json(res, 200, { repositories: ['stolen'] }));
    const server = await serve((_req, res) =>
      json(
        res,
        200,
        { repositories: ['a'] },
        { link: `<${other.origin}/v2/_catalog?last=a&n=1000>; rel="next"` },
      ),
    );
    const client = clientFor(server);

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ code: 'RJ_PAGINATION' });
    expect((error as Error).message).toContain('refusing to follow it');
    expect(other.requests).toEqual([]);
  });

  it('refuses a next-page link to another path on the same origin', async () => {
    // Prepare
    const server = await serve((_req, res) =>
      json(res, 200, { tags: ['v1'] }, { link: '</v2/other/manifests/v1?last=v1>; rel="next"' }),
    );
    const client = clientFor(server);

    // Act
    const error = await client.listTags('app').catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ code: 'RJ_PAGINATION' });
    expect(server.requests).toHaveLength(1);
  });

  it('stops when the next-page link does not advance', async () => {
    // Prepare
    const server = await serve((_req, res) =>
      json(res, 200, { repositories: ['a', 'b'] }, { link: '</v2/_catalog?last=b&n=2>; rel="next"' }),
    );
    const client = clientFor(server, { pageSize: 2 });

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ code: 'RJ_PAGINATION' });
    expect((error as Error).message).toContain('does not advance');
    expect(server.requests.map((request) => request.url)).toEqual([
      '/v2/_catalog?n=2',
      '/v2/_catalog?last=b&n=2',
    ]);
  });

  it('stops after maxPages', async () => {
    // Prepare
    const server = await serve((_req, res, index) =>
      json(
        res,
        200,
        { repositories: [`r${index}`] },
        { link: `</v2/_catalog?last=r${index}&n=1>; rel="next"` },
      ),
    );
    const client = clientFor(server, { pageSize: 1, maxPages: 3 });

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({
      code: 'RJ_PAGINATION',
      message: expect.stringContaining('more than 3 pages'),
    });
    expect(server.requests).toHaveLength(3);
  });

  it('follows paginated tag lists (v3), finding rel="next" among several links', async () => {
    // Prepare
    const server = await serve((req, res) => {
      if (req.url === '/v2/app/tags/list') {
        json(
          res,
          200,
          { name: 'app', tags: ['a', 'b'] },
          {
            link: '</v2/app/tags/list?n=2>; rel="first", </v2/app/tags/list?last=b&n=2>; rel=next',
          },
        );
      } else {
        json(res, 200, { name: 'app', tags: ['c'] });
      }
    });
    const client = clientFor(server);

    // Act
    const tags = await client.listTags('app');

    // Assess
    expect(tags).toEqual(['a', 'b', 'c']);
    expect(server.requests.map((request) => request.url)).toEqual([
      '/v2/app/tags/list',
      '/v2/app/tags/list?last=b&n=2',
    ]);
  });

  it('skips invalid names from the registry and reports each one', async () => {
    // Prepare
    const server = await serve((req, res) => {
      if (req.url?.startsWith('/v2/_catalog')) {
        json(res, 200, { repositories: ['good/one', 'Bad', '../../etc', 'a//b', 42, 'ok'] });
      } else {
        json(res, 200, { name: 'ok', tags: ['v1', '-dash', 'x'.repeat(129), 'has space', 'v2'] });
      }
    });
    const invalid: [string, string][] = [];
    const client = clientFor(server, { onInvalidName: (kind, value) => invalid.push([kind, value]) });

    // Act
    const repositories = await client.listRepositories();
    const tags = await client.listTags('ok');

    // Assess
    expect(repositories).toEqual(['good/one', 'ok']);
    expect(tags).toEqual(['v1', 'v2']);
    expect(invalid).toEqual([
      ['repository', 'Bad'],
      ['repository', '../../etc'],
      ['repository', 'a//b'],
      ['repository', '42'],
      ['tag', '-dash'],
      ['tag', 'x'.repeat(129)],
      ['tag', 'has space'],
    ]);
  });

  it('treats NAME_UNKNOWN from tags/list as a repository without tags', async () => {
    // Prepare
    const server = await serve((_req, res) =>
      json(res, 404, {
        errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }],
      }),
    );
    const client = clientFor(server);

    // Act
    const tags = await client.listTags('gone');

    // Assess
    expect(tags).toEqual([]);
  });
});

describe('options', () => {
  it.each([
    [{ url: 'ftp://registry.example.com' }, 'http:// or https://'],
    [{ url: 'https://registry.example.com/v2/' }, 'the registry origin only'],
    [{ url: 'https://user:pw@registry.example.com' }, 'without user:password@'],
    [
      { url: 'https://user:pw@registry.example.com:99999' },
      'got https://user:***@registry.example.com:99999',
    ],
    [{ pageSize: 1001 }, 'pageSize must be at most 1000'],
    [{ concurrency: 0 }, 'concurrency must be a positive integer'],
    [{ credentials: { username: 'a:b', password: 'pw' } }, 'a non-empty username without ":"'],
    [{ credentials: { token: 'two\nlines' } }, 'a token of printable characters'],
  ] as [Partial<RegistryClientOptions>, string][])('rejects %o', (options, message) => {
    // Act
    const create = () =>
      createRegistryClient({ url: 'https://registry.example.com', concurrency: 1, ...options });

    // Assess
    expect(create).toThrow(expect.objectContaining({ code: 'RJ_INVALID_OPTIONS' }));
    expect(create).toThrow(message);
    try {
      create();
    } catch (error) {
      expect((error as Error).message).not.toContain('pw@');
    }
  });
});
