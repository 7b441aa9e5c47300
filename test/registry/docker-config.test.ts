import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DockerConfigError,
  defaultDockerConfigPath,
  lookupDockerConfig,
  readDockerConfigCredentials,
} from '../../lambda/registry/docker-config.js';

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
    expect(helped).toEqual({ path, credentialHelper: 'ecr-login' });
    expect(await readDockerConfigCredentials('registry.example.com', path)).toBeUndefined();
    expect(plain).toEqual({ path, credentials: { username: 'x', password: 'y' } });
  });

  it('reports a credsStore, which Docker uses for every host', async () => {
    // Prepare
    await writeFile(path, JSON.stringify({ auths: { 'registry.example.com': {} }, credsStore: 'desktop' }));

    // Act
    const lookup = await lookupDockerConfig('registry.example.com', path);

    // Assess
    expect(lookup).toEqual({ path, credentialHelper: 'desktop' });
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
