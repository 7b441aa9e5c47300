import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CliResult, runCli } from './cli-runner.js';
import { headManifest, pushImage } from './support/images.js';
import { secretLeaks } from './support/leaks.js';
import { type StartRegistryOptions, startRegistry, type TestRegistry } from './support/registry.js';
import { pushStaleAndCurrent, storageRoot, tagLinkPath } from './support/storage.js';

/** Characters a terminal acts on, other than a line break and a tab. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it finds
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;

const everything = (result: CliResult) => `${result.stdout}${result.stderr}`;
const newPassword = () => `pw-${randomBytes(12).toString('base64url')}`;
const errors = (result: CliResult) => result.stderr.split('\n').filter((line) => line.startsWith('error: '));

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

describe('credentials in the registry address', () => {
  it('refuses them from --registry, masked, saying how to log in instead', async () => {
    const password = newPassword();

    const result = await runCli([
      'plan',
      '--registry',
      `http://alice:${password}@127.0.0.1:5000`,
      '--keep-last',
      '1',
    ]);

    expect(result.code).toBe(2);
    expect(errors(result)).toEqual([
      'error: --registry: credentials do not belong in the address, got "http://alice:***@127.0.0.1:5000": give http://127.0.0.1:5000 and pass --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD',
    ]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(secretLeaks(everything(result), { username: 'alice', password })).toEqual([]);
  });

  it('refuses them from REGISTRY_URL, naming the variable', async () => {
    const password = newPassword();

    const result = await runCli(['verify'], {
      env: { REGISTRY_URL: `https://alice:${encodeURIComponent(`${password}@/`)}@registry.example:5000/v2/` },
    });

    expect(result.code).toBe(2);
    expect(errors(result)).toEqual([
      'error: REGISTRY_URL: credentials do not belong in the address, got "https://alice:***@registry.example:5000/v2/": give https://registry.example:5000 and pass --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD',
    ]);
    expect(secretLeaks(everything(result), { username: 'alice', password })).toEqual([]);
  });

  it('masks a token in the query of an address it refuses', async () => {
    const token = newPassword();

    const result = await runCli([
      'plan',
      '--registry',
      `https://registry.example/?access_token=${token}`,
      '--keep-last',
      '1',
    ]);

    expect(result.code).toBe(2);
    expect(errors(result)).toEqual([
      'error: --registry: expected an http:// or https:// address with no path, e.g. https://registry.example.com:5000, got "https://registry.example/?access_token=***"',
    ]);
    expect(secretLeaks(everything(result), { tokens: [token] })).toEqual([]);
  });
});

describe('a run that fails for its credentials', () => {
  let reg: TestRegistry | undefined;
  let dockerConfig: string | undefined;
  afterEach(async () => {
    await reg?.stop();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
    reg = undefined;
    dockerConfig = undefined;
  });

  /** A registry with web/app's `old` (stale, its digest returned) and `new`. */
  async function registryWith(
    options: StartRegistryOptions,
  ): Promise<{ registry: TestRegistry; stale: string }> {
    reg = await startRegistry(options);
    const { stale } = await pushStaleAndCurrent(reg, 'web/app');
    return { registry: reg, stale: stale.digest };
  }

  it('basic auth, wrong password from --password-stdin, REGISTRY_PASSWORD or the Docker config: never shown', async () => {
    // Prepare
    const { registry } = await registryWith({ auth: 'basic' });
    const wrong = newPassword();
    const args = ['plan', '--registry', registry.url, '--keep-last', '1', '--verbose'];
    dockerConfig = await mkdtemp(join(tmpdir(), 'docker-config-'));
    const auth = Buffer.from(`janitor:${wrong}`).toString('base64');
    await writeFile(
      join(dockerConfig, 'config.json'),
      JSON.stringify({ auths: { [registry.host]: { auth } } }),
    );

    // Act
    const results = [
      await runCli([...args, '--username', 'janitor', '--password-stdin'], { input: `${wrong}\n` }),
      await runCli(args, { env: { REGISTRY_USERNAME: 'janitor', REGISTRY_PASSWORD: wrong } }),
      await runCli(args, { env: { DOCKER_CONFIG: dockerConfig } }),
    ];

    // Assess
    for (const result of results) {
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^error: the registry at http:\/\/127\.0\.0\.1:\d+ rejected the username and password \(401 after answering the challenge\) for GET \/v2\/_catalog/m,
      );
      expect(result.stderr).toMatch(
        /^http: GET http:\/\/127\.0\.0\.1:\d+\/v2\/_catalog\?n=1000 401 \d+ ms$/m,
      );
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(secretLeaks(everything(result), { username: 'janitor', password: wrong })).toEqual([]);
    }
  });

  it('token auth, wrong password: the token server refuses it, and it is never shown', async () => {
    const { registry } = await registryWith({ auth: 'token' });
    const wrong = newPassword();
    const issuedBefore = registry.issuedTokens.length;

    const result = await runCli(
      [
        'plan',
        '--registry',
        registry.url,
        '--keep-last',
        '1',
        '--verbose',
        '--username',
        'janitor',
        '--password-stdin',
      ],
      { input: wrong },
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^error: the token server http:\/\/127\.0\.0\.1:\d+\/token refused the username and password for scope registry:catalog:\* \(401\)$/m,
    );
    expect(registry.issuedTokens).toHaveLength(issuedBefore);
    expect(secretLeaks(everything(result), { username: 'janitor', password: wrong })).toEqual([]);
  });

  it('token auth, the token server withholds delete: clean stops, and no token it issued is shown', async () => {
    // Prepare
    const { registry, stale } = await registryWith({
      auth: 'token',
      tokenWithholds: ['repository:web/app:delete'],
    });
    const { username = '', password = '' } = registry.credentials ?? {};
    const issuedBefore = registry.issuedTokens.length;

    // Act
    const result = await runCli(
      [
        'clean',
        '--registry',
        registry.url,
        '--keep-last',
        '1',
        '--yes',
        '--verbose',
        '--username',
        username,
        '--password-stdin',
      ],
      { input: password },
    );

    // Assess
    expect(registry.issuedTokens.length).toBeGreaterThan(issuedBefore);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^error: clean stopped before deleting anything: the registry does not let the\s+account "janitor" delete in web\/app/m,
    );
    expect(await headManifest(registry, 'web/app', 'old')).toBe(stale);

    expect(secretLeaks(everything(result), { username, password, tokens: registry.issuedTokens })).toEqual(
      [],
    );
  });

  it('token auth with a key in the realm URL: --verbose logs each request with the key masked', async () => {
    // Prepare
    const key = newPassword();
    const { registry } = await registryWith({ auth: 'token', tokenRealmQuery: `?access_token=${key}` });
    const { username = '', password = '' } = registry.credentials ?? {};

    // Act
    const result = await runCli(
      [
        'plan',
        '--registry',
        registry.url,
        '--keep-last',
        '1',
        '--verbose',
        '--username',
        username,
        '--password-stdin',
      ],
      { input: password },
    );

    // Assess
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('web/app');
    expect(result.stderr).toMatch(
      /^http: GET http:\/\/127\.0\.0\.1:\d+\/token\?access_token=\*\*\*&service=registry-janitor-test&scope=registry%3Acatalog%3A\* 200 \d+ ms$/m,
    );
    expect(registry.issuedTokens.length).toBeGreaterThan(0);
    expect(
      secretLeaks(everything(result), { username, password, tokens: [key, ...registry.issuedTokens] }),
    ).toEqual([]);
  });

  it('an unreachable registry: the error names the address, never the password', async () => {
    const port = await closedPort();
    const password = newPassword();

    const result = await runCli(
      [
        'plan',
        '--registry',
        `http://127.0.0.1:${port}`,
        '--keep-last',
        '1',
        '--verbose',
        '--username',
        'janitor',
        '--password-stdin',
      ],
      { input: password },
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      new RegExp(
        `^error: GET http://127\\.0\\.0\\.1:${port}/v2/_catalog\\?n=1000 failed \\(ECONNREFUSED\\): is the registry running at that address\\?$`,
        'm',
      ),
    );
    expect(secretLeaks(everything(result), { username: 'janitor', password })).toEqual([]);
  });
});

describe('names that could take over a terminal', () => {
  let reg: TestRegistry | undefined;
  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
  });

  it('are escaped in every warning, and no control or bidi character is printed', async () => {
    // Prepare: the registry refuses such names on push, so they are written into its storage
    reg = await startRegistry();
    const image = await pushImage(reg, 'app', 'v1', {});
    const tags = [
      'v1\u202egpj.exe',
      'red\x1b[31mtag',
      '\u2066isolated\u2069',
      'marks\u200e\u200f\u061c',
      'del\x7fc1\u0085csi\u009b',
    ];
    for (const tag of tags) {
      const link = tagLinkPath(reg, 'app', tag);
      await mkdir(dirname(link), { recursive: true });
      await writeFile(link, image.digest);
    }
    const repositories = join(storageRoot(reg), 'repositories');
    await cp(join(repositories, 'app'), join(repositories, 'clear\x1b[2Jscreen'), { recursive: true });

    // Act
    const plan = await runCli(['plan', '--registry', reg.url, '--keep-last', '1']);
    const verify = await runCli(['verify', '--registry', reg.url, '--json']);

    // Assess
    expect(plan.code).toBe(0);
    const warnings = [...new Set(plan.stderr.trimEnd().split('\n'))].sort();
    expect(warnings).toEqual(
      [
        'warning: skipped invalid repository name "clear\\u001b[2Jscreen"',
        'warning: skipped invalid tag name "v1\\u202egpj.exe"',
        'warning: skipped invalid tag name "red\\u001b[31mtag"',
        'warning: skipped invalid tag name "\\u2066isolated\\u2069"',
        'warning: skipped invalid tag name "marks\\u200e\\u200f\\u061c"',
        'warning: skipped invalid tag name "del\\u007fc1\\u0085csi\\u009b"',
      ].sort(),
    );
    expect(plan.stdout).toContain('v1   ');
    expect(verify.code).toBe(0);
    expect(verify.stderr).toContain('warning: skipped invalid tag name "v1\\u202egpj.exe"\n');
    for (const output of [everything(plan), everything(verify)]) {
      expect(output).not.toContain('\u202e');
      expect(output).not.toContain('\x1b');
      expect(output).not.toMatch(RAW_CONTROL);
    }
  });
});
