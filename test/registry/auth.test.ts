import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRegistryClient } from '../../lambda/registry/client.js';
import { AuthError } from '../../lambda/registry/errors.js';
import { pushImage } from '../support/images.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { recordingAgent } from './recording.js';

type Digest = `sha256:${string}`;

describe('Basic auth (htpasswd)', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'basic' });
    await pushImage(reg, 'basic/app', 'v1');
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('answers the Basic challenge once, then sends the credentials up front', async () => {
    // Prepare
    const recorder = recordingAgent();
    const client = createRegistryClient({
      url: reg.url,
      concurrency: 2,
      credentials: reg.credentials,
      dispatcher: recorder.dispatcher,
    });

    // Act
    const repositories = await client.listRepositories();
    const tags = await client.listTags('basic/app');
    await recorder.close();

    // Assess
    expect(repositories).toEqual(['basic/app']);
    expect(tags).toEqual(['v1']);
    expect(recorder.requests.map((request) => request.authorization?.split(' ')[0] ?? 'none')).toEqual([
      'none',
      'Basic',
      'Basic',
    ]);
  });

  it('throws AuthError for a wrong password, without the password in the message', async () => {
    // Prepare
    const password = 'not-the-password-1234';
    const client = createRegistryClient({
      url: reg.url,
      concurrency: 1,
      credentials: { username: reg.credentials?.username ?? 'janitor', password },
    });

    // Act
    const attempt = client.listTags('basic/app');

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(AuthError);
    const error = (await attempt.catch((e: unknown) => e)) as AuthError;
    expect(error).toMatchObject({ code: 'RJ_AUTH', credentials: 'username-password' });
    expect(error.message).toContain('rejected the username and password');
    expect(error.message).not.toContain(password);
    await client.close();
  });

  it('throws AuthError when the registry wants credentials and none were given', async () => {
    // Prepare
    const client = createRegistryClient({ url: reg.url, concurrency: 1 });

    // Act
    const attempt = client.listRepositories();

    // Assess
    await expect(attempt).rejects.toMatchObject({
      name: 'AuthError',
      code: 'RJ_AUTH',
      credentials: 'none',
      message: expect.stringContaining('requires a username and password'),
    });
    await client.close();
  });
});

describe('Token auth (Bearer challenge)', () => {
  let reg: TestRegistry;
  let kept: Digest;
  let doomed: Digest[];

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    kept = (await pushImage(reg, 'token/app', 'v1')).digest as Digest;
    doomed = [
      (await pushImage(reg, 'token/app', 'old1')).digest as Digest,
      (await pushImage(reg, 'token/app', 'old2')).digest as Digest,
    ];
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('asks the token server for exactly the scopes of the calls, once per scope', async () => {
    // Prepare
    reg.tokenRequests.length = 0;
    const client = createRegistryClient({ url: reg.url, concurrency: 2, credentials: reg.credentials });

    // Act
    const repositories = await client.listRepositories();
    const afterCatalog = [...reg.tokenRequests];
    const tags = await client.listTags('token/app');
    const resolved = await client.resolveManifest('token/app', 'v1');
    const manifest = await client.getManifest('token/app', 'v1');
    const afterPulls = [...reg.tokenRequests];
    const deleted = [
      await client.deleteManifest('token/app', doomed[0] as Digest),
      await client.deleteManifest('token/app', doomed[1] as Digest),
    ];
    await client.listRepositories();
    await client.close();

    // Assess
    expect(repositories).toEqual(['token/app']);
    expect([...tags].sort()).toEqual(['old1', 'old2', 'v1']);
    expect(resolved).toBe(kept);
    expect(manifest?.digest).toBe(kept);
    expect(deleted).toEqual(['deleted', 'deleted']);
    expect(afterCatalog).toEqual(['registry:catalog:*']);
    expect(afterPulls).toEqual(['registry:catalog:*', 'repository:token/app:pull']);
    expect(reg.tokenRequests).toEqual([
      'registry:catalog:*',
      'repository:token/app:pull',
      'repository:token/app:delete',
    ]);
  });

  it('fetches a new token once the cached one is about to expire', async () => {
    // Prepare
    reg.tokenRequests.length = 0;
    let now = Date.UTC(2030, 0, 1);
    const client = createRegistryClient({
      url: reg.url,
      concurrency: 1,
      credentials: reg.credentials,
      now: () => now,
    });
    await client.listTags('token/app');

    // Act
    now += 60_000;
    await client.listTags('token/app');
    const beforeExpiry = [...reg.tokenRequests];
    now += 300_000;
    await client.listTags('token/app');
    await client.close();

    // Assess
    expect(beforeExpiry).toEqual(['repository:token/app:pull']);
    expect(reg.tokenRequests).toEqual(['repository:token/app:pull', 'repository:token/app:pull']);
  });

  it('throws AuthError when the token server refuses the password', async () => {
    // Prepare
    const password = 'wrong-password-5678';
    const client = createRegistryClient({
      url: reg.url,
      concurrency: 1,
      credentials: { username: reg.credentials?.username ?? 'janitor', password },
    });

    // Act
    const attempt = client.listRepositories();

    // Assess
    const error = (await attempt.catch((e: unknown) => e)) as AuthError;
    expect(error).toBeInstanceOf(AuthError);
    expect(error.code).toBe('RJ_AUTH');
    expect(error.message).toMatch(
      /token server .* refused the username and password for scope registry:catalog:\*/,
    );
    expect(error.message).not.toContain(password);
    await client.close();
  });
});
