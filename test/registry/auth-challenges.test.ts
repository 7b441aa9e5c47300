import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseChallenges } from '../../lambda/registry/auth.js';
import { createRegistryClient, type RegistryClientOptions } from '../../lambda/registry/client.js';
import { AuthError, RegistryRequestError } from '../../lambda/registry/errors.js';
import {
  json,
  type StandIn,
  type StandInHandler,
  selfSignedLoopbackCertificate,
  startStandIn,
  type TlsMaterial,
} from './stand-in.js';

const DIGEST = `sha256:${'a'.repeat(64)}` as const;
const OTHER_DIGEST = `sha256:${'b'.repeat(64)}` as const;

describe('parseChallenges', () => {
  it('reads a registry Bearer challenge', () => {
    // Act
    const [challenge] = parseChallenges(
      'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:app:pull"',
    );

    // Assess
    expect(challenge?.scheme).toBe('bearer');
    expect(Object.fromEntries(challenge?.params ?? [])).toEqual({
      realm: 'https://auth.example.com/token',
      service: 'registry.example.com',
      scope: 'repository:app:pull',
    });
  });

  it('keeps commas and escaped quotes inside quoted values, and splits several challenges', () => {
    // Act
    const challenges = parseChallenges(
      'Basic realm="Registry, \\"prod\\"", Bearer realm="https://a/token" , scope="repository:app:pull,delete", error="insufficient_scope"',
    );

    // Assess
    expect(challenges.map((challenge) => challenge.scheme)).toEqual(['basic', 'bearer']);
    expect(challenges[0]?.params.get('realm')).toBe('Registry, "prod"');
    expect(challenges[1]?.params.get('scope')).toBe('repository:app:pull,delete');
    expect(challenges[1]?.params.get('error')).toBe('insufficient_scope');
  });

  it('accepts unquoted values, upper-case names, a token68 and several header lines', () => {
    // Act
    const challenges = parseChallenges([
      'Negotiate abc/def+==, BEARER Realm=https://a.example/token?x=1,Service=reg',
      'Basic',
    ]);

    // Assess
    expect(challenges.map((challenge) => challenge.scheme)).toEqual(['negotiate', 'bearer', 'basic']);
    expect(challenges[0]?.params.size).toBe(0);
    expect(Object.fromEntries(challenges[1]?.params ?? [])).toEqual({
      realm: 'https://a.example/token?x=1',
      service: 'reg',
    });
  });

  it('returns nothing for an absent or empty header', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges(' , ')).toEqual([]);
  });
});

const servers: StandIn[] = [];
const clients: { close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(handler: StandInHandler, tls?: TlsMaterial): Promise<StandIn> {
  const server = await startStandIn(handler, tls);
  servers.push(server);
  return server;
}

function clientFor(server: StandIn, options: Partial<RegistryClientOptions> = {}) {
  const client = createRegistryClient({ url: server.origin, concurrency: 4, retries: 0, ...options });
  clients.push(client);
  return client;
}

describe('Bearer token flow', () => {
  it('uses the scope from the challenge, caches the token under it, and reads access_token', async () => {
    // Prepare
    let issued = 0;
    const tokens = await serve((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      issued++;
      json(res, 200, { access_token: `tok-${url.searchParams.getAll('scope').join('|')}` });
    });
    const registry = await serve((req, res) => {
      const scope = 'repository:app:pull,delete';
      if (req.headers.authorization !== `Bearer tok-${scope}`) {
        res.writeHead(401, {
          'www-authenticate': `Basic realm="legacy", Bearer realm="${tokens.origin}/token",service="reg",scope="${scope}"`,
        });
        res.end();
        return;
      }
      res.writeHead(202).end();
    });
    const client = clientFor(registry, { credentials: { username: 'janitor', password: 'pw' } });

    // Act
    const outcomes = [
      await client.deleteManifest('app', DIGEST),
      await client.deleteManifest('app', OTHER_DIGEST),
    ];

    // Assess
    expect(outcomes).toEqual(['deleted', 'deleted']);
    expect(issued).toBe(1);
    expect(tokens.requests[0]?.url).toBe('/token?service=reg&scope=repository%3Aapp%3Apull%2Cdelete');
    expect(tokens.requests[0]?.authorization).toBe(`Basic ${Buffer.from('janitor:pw').toString('base64')}`);
    expect(registry.requests.map((request) => request.authorization)).toEqual([
      undefined,
      'Bearer tok-repository:app:pull,delete',
      'Bearer tok-repository:app:pull,delete',
    ]);
  });

  it('asks the token server once for concurrent calls with the same scope, anonymously without credentials', async () => {
    // Prepare
    const tokens = await serve((_req, res) => json(res, 200, { token: 'anon', expires_in: 600 }));
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== 'Bearer anon') {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${tokens.origin}/token",service="reg",scope="registry:catalog:*"`,
        });
        res.end();
        return;
      }
      json(res, 200, { repositories: ['app'] });
    });
    const client = clientFor(registry);

    // Act
    const results = await Promise.all([
      client.listRepositories(),
      client.listRepositories(),
      client.listRepositories(),
    ]);

    // Assess
    expect(results).toEqual([['app'], ['app'], ['app']]);
    expect(tokens.requests).toHaveLength(1);
    expect(tokens.requests[0]?.authorization).toBeUndefined();
  });

  it('throws AuthError when a fresh token is still refused', async () => {
    // Prepare
    const tokens = await serve((_req, res) => json(res, 200, { token: 'useless' }));
    const registry = await serve((_req, res) => {
      res.writeHead(401, {
        'www-authenticate': `Bearer realm="${tokens.origin}/token",service="reg",scope="repository:app:pull"`,
      });
      res.end();
    });
    const client = clientFor(registry, { credentials: { username: 'janitor', password: 'hunter2' } });

    // Act
    const error = await client.listTags('app').catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AuthError);
    expect(error).toMatchObject({ code: 'RJ_AUTH', method: 'GET', path: '/v2/app/tags/list' });
    expect((error as Error).message).not.toContain('hunter2');
    expect(registry.requests).toHaveLength(2);
  });

  it('reports a token server answer without a token', async () => {
    // Prepare
    const tokens = await serve((_req, res) => json(res, 200, { nothing: true }));
    const registry = await serve((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/token"` }).end();
    });
    const client = clientFor(registry);

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({
      code: 'RJ_BAD_RESPONSE',
      message: expect.stringContaining('no usable token'),
    });
  });

  it('names the token server alone when its answer stalls mid-body', async () => {
    // Prepare
    const tokens = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '64' });
      res.write('{"token":"par');
    });
    const registry = await serve((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/token",service="reg"` }).end();
    });
    const client = clientFor(registry, { requestTimeoutMs: 500 });

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    const message = (error as Error).message;
    expect(message).toContain(`${tokens.origin}/token`);
    expect(message).not.toContain(`${registry.origin}http`);
  });

  it('throws AuthError when a static bearer token is refused', async () => {
    // Prepare
    const registry = await serve((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="https://auth.example/token"' }).end();
    });
    const client = clientFor(registry, { credentials: { token: 'static-secret-token' } });

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toMatchObject({ code: 'RJ_AUTH', credentials: 'token' });
    expect((error as Error).message).toContain('rejected the bearer token');
    expect((error as Error).message).not.toContain('static-secret-token');
    expect(registry.requests[0]?.authorization).toBe('Bearer static-secret-token');
  });
});

describe('TLS', () => {
  let tls: TlsMaterial;

  beforeAll(async () => {
    tls = await selfSignedLoopbackCertificate();
  });

  const catalog: StandInHandler = (_req, res) => json(res, 200, { repositories: ['app'] });

  it('refuses a self-signed certificate by default (RJ_TLS), and accepts it with insecureTls or as a trusted CA', async () => {
    // Prepare
    const registry = await serve(catalog, tls);

    // Act
    const strict = await clientFor(registry)
      .listRepositories()
      .catch((e: unknown) => e);
    const insecure = await clientFor(registry, { insecureTls: true }).listRepositories();
    const trusted = await clientFor(registry, { ca: tls.cert }).listRepositories();

    // Assess
    expect(strict).toBeInstanceOf(RegistryRequestError);
    expect(strict).toMatchObject({ code: 'RJ_TLS' });
    expect((strict as Error).message).toContain('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(insecure).toEqual(['app']);
    expect(trusted).toEqual(['app']);
  });

  it('does not send credentials to a plain-http token server named by an https registry', async () => {
    // Prepare
    const tokens = await serve((_req, res) => json(res, 200, { token: 't' }));
    const registry = await serve((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokens.origin}/token",service="reg"` }).end();
    }, tls);
    const client = clientFor(registry, {
      ca: tls.cert,
      credentials: { username: 'janitor', password: 'pw' },
    });

    // Act
    const error = await client.listRepositories().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toContain('over plain http; refusing to send credentials');
    expect(tokens.requests).toEqual([]);
  });
});
