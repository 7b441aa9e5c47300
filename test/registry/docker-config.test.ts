import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DockerConfigError,
  defaultDockerConfigPath,
  lookupDockerConfig,
  readDockerConfigCredentials,
  resolveDockerCredentials,
} from '../../lambda/registry/docker-config.js';
import {
  type HelperBehaviour,
  installCredentialHelper,
  type StandInHelper,
} from '../support/credential-helper.js';

const auth = (user: string, password: string) => Buffer.from(`${user}:${password}`).toString('base64');

describe('Docker config credentials', () => {
  let dir: string;
  let path: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registry-janitor-docker-config-'));
    path = join(dir, 'config.json');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('decodes auths[host].auth, keeping colons in the password', async () => {
    // Prepare
    await writeFile(
      path,
      JSON.stringify({ auths: { 'registry.example.com:5000': { auth: auth('ci', 'p:a:ss') } } }),
    );

    // Act
    const credentials = await readDockerConfigCredentials('registry.example.com:5000', path);

    // Assess
    expect(credentials).toEqual({ username: 'ci', password: 'p:a:ss' });
  });

  it.each([
    'https://registry.example.com',
    'http://registry.example.com',
    'registry.example.com/v2/',
    'https://REGISTRY.example.com/v1/',
  ])('matches a key written as %s', async (key) => {
    // Prepare
    await writeFile(path, JSON.stringify({ auths: { [key]: { username: 'ci', password: 'secret' } } }));

    // Act
    const credentials = await readDockerConfigCredentials('registry.example.com', path);

    // Assess
    expect(credentials).toEqual({ username: 'ci', password: 'secret' });
  });

  it('does not match another host or port', async () => {
    // Prepare
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          'registry.example.com:5000': { auth: auth('a', 'b') },
          'other.example.com': { auth: auth('c', 'd') },
        },
      }),
    );

    // Act
    const credentials = await readDockerConfigCredentials('registry.example.com', path);

    // Assess
    expect(credentials).toBeUndefined();
  });

  it('reports a credential helper for the host instead of credentials', async () => {
    // Prepare
    await writeFile(
      path,
      JSON.stringify({
        auths: {
          'registry.example.com': { auth: auth('stale', 'stale') },
          'plain.example.com': { auth: auth('x', 'y') },
        },
        credHelpers: { 'registry.example.com': 'ecr-login' },
      }),
    );

    // Act
    const helped = await lookupDockerConfig('registry.example.com', path);
    const plain = await lookupDockerConfig('plain.example.com', path);

    // Assess
    expect(helped).toEqual({
      path,
      credentialHelper: {
        name: 'ecr-login',
        setting: 'credHelpers["registry.example.com"]',
        serverAddresses: ['registry.example.com'],
      },
    });
    expect(await readDockerConfigCredentials('registry.example.com', path)).toBeUndefined();
    expect(plain).toEqual({ path, credentials: { username: 'x', password: 'y' } });
  });

  it('reports a credsStore, which Docker uses for every host', async () => {
    // Prepare
    await writeFile(path, JSON.stringify({ auths: { 'registry.example.com': {} }, credsStore: 'desktop' }));

    // Act
    const lookup = await lookupDockerConfig('registry.example.com', path);

    // Assess
    expect(lookup).toEqual({
      path,
      credentialHelper: { name: 'desktop', setting: 'credsStore', serverAddresses: ['registry.example.com'] },
    });
  });

  it('treats a missing file as no credentials', async () => {
    // Act
    const lookup = await lookupDockerConfig('registry.example.com', join(dir, 'absent.json'));

    // Assess
    expect(lookup).toEqual({ path: join(dir, 'absent.json') });
  });

  it('names the file when it is not JSON or an auth entry is not user:password', async () => {
    // Prepare
    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ not json');
    await writeFile(path, JSON.stringify({ auths: { 'registry.example.com': { auth: 'bm9jb2xvbg==' } } }));

    // Act
    const notJson = await readDockerConfigCredentials('registry.example.com', broken).catch(
      (e: unknown) => e,
    );
    const badAuth = await readDockerConfigCredentials('registry.example.com', path).catch((e: unknown) => e);

    // Assess
    expect(notJson).toBeInstanceOf(DockerConfigError);
    expect(notJson).toMatchObject({ code: 'RJ_DOCKER_CONFIG', message: `${broken}: is not valid JSON` });
    expect(badAuth).toMatchObject({ code: 'RJ_DOCKER_CONFIG' });
    expect((badAuth as Error).message).toContain('auths["registry.example.com"].auth is not base64 of');
  });

  it('finds the file through DOCKER_CONFIG, else under the home directory', () => {
    expect(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/docker-ci' }, '/home/u')).toBe(
      '/etc/docker-ci/config.json',
    );
    expect(defaultDockerConfigPath({}, '/home/u')).toBe('/home/u/.docker/config.json');
  });
});

describe('Docker credential helpers', () => {
  const host = 'registry.example.com:5000';
  let dir: string;
  let path: string;
  let helpers: StandInHelper[];
  let secret: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'registry-janitor-docker-config-'));
    path = join(dir, 'config.json');
    secret = `s3cret-${randomBytes(9).toString('base64url')}`;
    helpers = [];
  });

  afterEach(async () => {
    await Promise.all(helpers.map((h) => h.remove()));
    await rm(dir, { recursive: true, force: true });
  });

  async function install(behaviour: HelperBehaviour): Promise<StandInHelper> {
    const helper = await installCredentialHelper(behaviour);
    helpers.push(helper);
    return helper;
  }

  async function withHelper(config: object, behaviour: HelperBehaviour): Promise<StandInHelper> {
    await writeFile(path, JSON.stringify(config));
    return install(behaviour);
  }

  async function failure(env: NodeJS.ProcessEnv, timeoutMs?: number): Promise<Error> {
    const error = await resolveDockerCredentials(host, {
      path,
      env,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DockerConfigError);
    return error as Error;
  }

  it('asks the credHelpers entry for the host, writing the host on its input, and ignores auths', async () => {
    // Prepare
    const fake = await withHelper(
      { credHelpers: { [host]: 'fake' }, auths: { [host]: { auth: auth('stale', 'stale') } } },
      { answers: { [host]: { Username: 'ci', Secret: secret } } },
    );

    // Act
    const credentials = await resolveDockerCredentials(host, { path, env: fake.env });

    // Assess
    expect(credentials).toEqual({ username: 'ci', password: secret });
    expect(await fake.requests()).toEqual([host]);
  });

  it('finds the config through DOCKER_CONFIG in the environment it is given', async () => {
    // Prepare
    const fake = await withHelper(
      { credsStore: 'fake' },
      { answers: { [host]: { Username: 'ci', Secret: secret } } },
    );

    // Act
    const credentials = await resolveDockerCredentials(host, { env: { ...fake.env, DOCKER_CONFIG: dir } });

    // Assess
    expect(credentials).toEqual({ username: 'ci', password: secret });
  });

  it('asks a credsStore for the host, then for the spelling of the host docker login wrote in auths', async () => {
    // Prepare
    const key = `https://${host}`;
    const fake = await withHelper(
      { credsStore: 'fake', auths: { [key]: {} } },
      { answers: { [key]: { Username: 'ci', Secret: secret } } },
    );

    // Act
    const credentials = await resolveDockerCredentials(host, { path, env: fake.env });

    // Assess
    expect(credentials).toEqual({ username: 'ci', password: secret });
    expect(await fake.requests()).toEqual([host, key]);
  });

  it('without credentials in the helper: the auths entry with a credsStore, anonymous with credHelpers', async () => {
    // Prepare
    const fake = await withHelper(
      { credsStore: 'fake', auths: { [host]: { auth: auth('ci', 'from-file') } } },
      {},
    );
    const store = await resolveDockerCredentials(host, { path, env: fake.env });
    await writeFile(
      path,
      JSON.stringify({
        credHelpers: { [host]: 'fake' },
        auths: { [host]: { auth: auth('ci', 'from-file') } },
      }),
    );

    // Act
    const helpers = await resolveDockerCredentials(host, { path, env: fake.env });

    // Assess
    expect(store).toEqual({ username: 'ci', password: 'from-file' });
    expect(helpers).toBeUndefined();
    expect(await fake.requests()).toEqual([host, host]);
  });

  it('refuses a helper name that is not a plain file name, without running anything', async () => {
    // Prepare
    const fake = await withHelper({ credHelpers: { [host]: '../../bin/sh' } }, {});

    // Act
    const error = await failure(fake.env);

    // Assess
    expect(error.message).toBe(
      `${path}: credHelpers["${host}"]: "../../bin/sh" is not a credential helper name; Docker runs docker-credential-<name>, so use only letters, digits, ".", "_" and "-", e.g. "pass"`,
    );
    expect(await fake.requests()).toEqual([]);
  });

  it('names the executable and the config file when the helper is not on PATH', async () => {
    // Prepare
    await writeFile(path, JSON.stringify({ credsStore: 'absent' }));

    // Act
    const error = await failure({ PATH: dir });

    // Assess
    expect(error.message).toBe(`${path}: credsStore "absent": docker-credential-absent is not on PATH`);
  });

  it('shows the exit code and what a failing helper said', async () => {
    // Prepare
    const fake = await withHelper(
      { credHelpers: { [host]: 'fake' } },
      { otherwise: { exitCode: 3, stderr: 'keyring is locked\n  unlock it first\n' } },
    );

    // Act
    const error = await failure(fake.env);

    // Assess
    expect(error.message).toBe(
      `${path}: credHelpers["${host}"] "fake": docker-credential-fake get exited with 3: keyring is locked unlock it first`,
    );
  });

  it('never shows a secret the helper printed, whether it failed or printed broken JSON', async () => {
    // Prepare
    const printed = `{"ServerURL":"${host}","Username":"ci","Secret":"${secret}"}`;
    const failing = await install({
      otherwise: { exitCode: 1, stdout: printed, stderr: 'store is read-only' },
    });
    const broken = await install({
      otherwise: { exitCode: 0, stdout: `Username=ci Secret=${secret}` },
    });
    await writeFile(path, JSON.stringify({ credsStore: 'fake' }));

    // Act
    const afterFailing = await failure(failing.env);
    const afterBroken = await failure(broken.env);

    // Assess
    expect(afterFailing.message).toBe(
      `${path}: credsStore "fake": docker-credential-fake get exited with 1: store is read-only`,
    );
    expect(afterBroken.message).toBe(
      `${path}: credsStore "fake": docker-credential-fake get printed something other than JSON {"ServerURL","Username","Secret"}`,
    );
    expect(`${afterFailing.message}${afterBroken.message}`).not.toContain(secret);
  });

  it('says identity tokens are not supported, without showing the token', async () => {
    // Prepare
    const fake = await withHelper(
      { credHelpers: { [host]: 'fake' } },
      { answers: { [host]: { Username: '<token>', Secret: secret } } },
    );

    // Act
    const error = await failure(fake.env);

    // Assess
    expect(error.message).toBe(
      `${path}: credHelpers["${host}"] "fake": docker-credential-fake holds an identity token for ${host} (Username "<token>"), and identity tokens are not supported`,
    );
    expect(error.message).not.toContain(secret);
  });

  it('stops a helper that does not answer in time, even while its child keeps the pipes open', async () => {
    // Prepare
    const fake = await withHelper({ credsStore: 'fake' }, { otherwise: { exitCode: 0, hangSeconds: 10 } });
    const started = Date.now();

    // Act
    const error = await failure(fake.env, 300);

    // Assess
    expect(error.message).toBe(
      `${path}: credsStore "fake": docker-credential-fake get gave no answer within 300 ms and was stopped`,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
