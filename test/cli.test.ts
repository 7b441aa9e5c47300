import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePlan, runCli } from './cli-runner.js';
import {
  type HelperBehaviour,
  installCredentialHelper,
  type StandInHelper,
} from './support/credential-helper.js';
import { DAEMON_DOWN, type DockerStandIn, installDockerStandIn } from './support/docker-stand-in.js';
import { headManifest, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { backdate, blobDataPath, setRevisionPushTime, setTagPushTime } from './support/storage.js';

const run = promisify(execFile);

describe('bad input', () => {
  it('lists every problem at once, names each flag, and exits 2 without a stack trace', async () => {
    const result = await runCli([
      'plan',
      '--registry',
      'ftp://registry',
      '--keep-last',
      'ten',
      '--untagged-grace',
      '3 days',
      '--concurrency',
      '0',
    ]);

    expect(result.code).toBe(2);
    expect(result.stderr.split('\n').filter((line) => line.startsWith('error: '))).toEqual([
      'error: --registry: expected an http:// or https:// address with no path, e.g. https://registry.example.com:5000, got "ftp://registry"',
      'error: --keep-last: expected a whole number ≥ 0 such as 10, got "ten"',
      'error: --untagged-grace: expected a duration such as 0, 90m, 2h or 7d, got "3 days"',
      'error: --concurrency: expected a whole number from 1 to 64, got "0"',
    ]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('names the field of a bad policy file and the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'policy-'));
    const file = join(dir, 'policy.json');
    await writeFile(
      file,
      JSON.stringify({ defaults: { keepLast: 5 }, rules: [{ repositories: ['a/*'], keepDays: 'ten' }] }),
    );

    const result = await runCli(['plan', '--registry', 'http://127.0.0.1:1', '--policy', file]);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `error: ${file}: rules[0].keepDays: expected a number of days or a duration such as 30, 36h or 2w, got "ten"`,
    );
  });

  it('refuses numbers and durations it would misread, stating what each flag takes', async () => {
    const result = await runCli([
      'clean',
      '--registry',
      'http://127.0.0.1:1',
      '--keep-days',
      '0x10',
      '--keep-last=-1',
      '--untagged-grace',
      '1e3s',
      '--timeout',
      '25d',
      '--concurrency',
      ' 5',
      '--gc',
      'local',
      '--upload-wait',
      '2d',
      '--yes',
    ]);
    const fiftyDays = await runCli(['verify', '--registry', 'http://127.0.0.1:1', '--timeout', '50d']);

    expect(result.code).toBe(2);
    expect(result.stderr.split('\n').filter((line) => line.startsWith('error: '))).toEqual([
      'error: --keep-last: expected a whole number ≥ 0 such as 10, got "-1"',
      'error: --keep-days: expected a number of days or a duration such as 30, 36h or 2w, got "0x10"',
      'error: --untagged-grace: expected a duration such as 0, 90m, 2h or 7d, got "1e3s"',
      'error: --concurrency: expected a whole number from 1 to 64, got " 5"',
      'error: --timeout: expected a duration of more than 0 and at most 24d such as 30m or 2h, got "25d"',
      'error: --upload-wait: expected a duration of at most 1d such as 0, 90s or 5m, got "2d"',
    ]);
    expect(fiftyDays).toMatchObject({ code: 2, stdout: '' });
    expect(fiftyDays.stderr).toContain(
      'error: --timeout: expected a duration of more than 0 and at most 24d such as 30m or 2h, got "50d"\n',
    );
    expect(result.stderr + fiftyDays.stderr).not.toMatch(/\n\s+at |out of range/);
  });

  it('refuses a keep-tag pattern RE2 cannot run, naming each one and why', async () => {
    const result = await runCli([
      'plan',
      '--registry',
      'http://127.0.0.1:1',
      '--keep-tag',
      '^latest$',
      '--keep-tag',
      '^(?!dev-)',
      '--keep-tag',
      '^(v)\\1$',
    ]);

    expect(result).toMatchObject({ code: 2, stdout: '' });
    expect(result.stderr.split('\n').filter((line) => line.startsWith('error: '))).toEqual([
      'error: --keep-tag: "^(?!dev-)" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?!` (RE2 has no lookahead or lookbehind)',
      'error: --keep-tag: "^(v)\\\\1$" is not an RE2 regular expression: invalid escape sequence: `\\1` (RE2 has no backreferences)',
    ]);
  });

  it('refuses clean without --yes when nobody can answer the question', async () => {
    const result = await runCli(['clean', '--registry', 'http://127.0.0.1:1', '--keep-last', '3']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('pass --yes to confirm when not running on a terminal');
  });

  it('rejects an unknown command and an unknown flag, saying what was meant', async () => {
    const command = await runCli(['plna', '--registry', 'http://x', '--keep-last', '1']);
    const flag = await runCli(['plan', '--keep-lats', '1']);

    expect(command).toMatchObject({ code: 2, stdout: '' });
    expect(command.stderr).toBe(
      'error: unknown command "plna": did you mean plan? (the commands are plan, clean, gc, verify, du)\n' +
        'Run registry-janitor help for the commands.\n',
    );
    expect(flag.code).toBe(2);
    expect(flag.stderr).toBe(
      'error: unknown option --keep-lats: did you mean --keep-last?\n' +
        'Run registry-janitor help plan for its options and examples.\n',
    );
  });

  it('reports an unreachable registry as a failure with its address', async () => {
    const result = await runCli([
      'plan',
      '--registry',
      'http://127.0.0.1:1',
      '--keep-last',
      '1',
      '--timeout',
      '20s',
    ]);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: .*127\.0\.0\.1:1/m);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('the installed command', () => {
  let reg: TestRegistry | undefined;
  afterEach(async () => {
    await reg?.stop();
    reg = undefined;
  });

  it('runs from the checkout as registry-janitor and prints its help and version', async () => {
    const bin = new URL('../scripts/cli-from-source.js', import.meta.url).pathname;

    const help = await run(process.execPath, [bin, '--help']);
    const version = await run(process.execPath, [bin, '--version']);

    expect(help.stdout).toMatch(/^Usage: registry-janitor <command> \[options\]\n/);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('plans through the real process, reporting a repository it cannot read and going on with the rest', async () => {
    // Prepare: one repository whose manifest blob is corrupt on disk
    reg = await startRegistry();
    const broken = await pushImage(reg, 'broken/app', 'v1', {});
    const old = await pushImage(reg, 'fine/app', 'old', {});
    await setRevisionPushTime(reg, 'fine/app', old.digest, new Date(Date.now() - 9 * 86_400_000));
    await setTagPushTime(reg, 'fine/app', 'old', new Date(Date.now() - 9 * 86_400_000));
    await pushImage(reg, 'fine/app', 'new', {});
    await writeFile(blobDataPath(reg, broken.digest), '{"schemaVersion": 2, "tampered": true}');
    const bin = new URL('../scripts/cli-from-source.js', import.meta.url).pathname;

    // Act
    const result = await run(
      process.execPath,
      [bin, 'clean', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1', '--yes'],
      { env: { ...process.env, DOCKER_CONFIG: '/nonexistent' } },
    ).catch((error: { code: number; stdout: string; stderr: string }) => error);

    // Assess
    expect('code' in result ? result.code : 0).toBe(1);
    expect(result.stderr).toMatch(
      /^error: repository broken\/app could not be scanned and is left alone: .*digest/m,
    );
    expect(result.stdout).toContain('Deleted 1 manifest,');
    expect(await headManifest(reg, 'fine/app', 'old')).toBeUndefined();
    expect(await headManifest(reg, 'broken/app', 'v1')).toBe(broken.digest);
  });
});

describe('Docker credential helpers', () => {
  let reg: TestRegistry | undefined;
  let helper: StandInHelper | undefined;
  let dockerConfig: string | undefined;
  afterEach(async () => {
    await reg?.stop();
    await helper?.remove();
    if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
    reg = undefined;
    helper = undefined;
    dockerConfig = undefined;
  });

  /** The environment of someone whose Docker config names the stand-in helper. */
  async function helperEnv(config: object, behaviour: HelperBehaviour): Promise<NodeJS.ProcessEnv> {
    helper = await installCredentialHelper(behaviour);
    dockerConfig = await mkdtemp(join(tmpdir(), 'docker-config-'));
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify(config));
    return { ...helper.env, DOCKER_CONFIG: dockerConfig };
  }

  it('plans a password-protected registry with the password the helper gives', async () => {
    // Prepare
    reg = await startRegistry({ auth: 'basic' });
    await pushImage(reg, 'private/app', 'x', {});
    const { username = '', password = '' } = reg.credentials ?? {};
    const env = await helperEnv(
      { credHelpers: { [reg.host]: 'fake' }, auths: { [reg.host]: {} } },
      { answers: { [reg.host]: { Username: username, Secret: password } } },
    );

    // Act
    const result = await runCli(['plan', '--registry', reg.url, '--keep-last', '1', '--json'], { env });

    // Assess
    expect(parsePlan(result).repositories.map((r) => [r.name, r.tags.map((t) => t.tag)])).toEqual([
      ['private/app', ['x']],
    ]);
    expect(await helper?.requests()).toEqual([reg.host]);
    expect(result.stderr).not.toContain(password);
    expect(result.stdout).not.toContain(password);
  });

  it('goes on anonymously, without a warning, when the helper has no credentials for the host', async () => {
    // Prepare
    reg = await startRegistry();
    await pushImage(reg, 'public/app', 'x', {});
    const env = await helperEnv({ credsStore: 'fake' }, {});

    // Act
    const result = await runCli(['plan', '--registry', reg.url, '--keep-last', '1', '--json'], { env });

    // Assess
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(parsePlan(result).repositories.map((r) => r.name)).toEqual(['public/app']);
    expect(await helper?.requests()).toEqual([reg.host]);
  });

  it('stops with exit 2 naming the helper, what it said and the fix, and never shows the secret', async () => {
    // Prepare
    const secret = `s3cret-${randomBytes(9).toString('base64url')}`;
    const env = await helperEnv(
      { credsStore: 'fake' },
      {
        otherwise: {
          exitCode: 1,
          stdout: `{"ServerURL":"127.0.0.1:1","Username":"ci","Secret":"${secret}"}`,
          stderr: 'error: the keyring is locked\n',
        },
      },
    );
    const config = join(dockerConfig ?? '', 'config.json');

    // Act
    const result = await runCli(['plan', '--registry', 'http://127.0.0.1:1', '--keep-last', '1'], { env });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toBe(
      `error: ${config}: credsStore "fake": docker-credential-fake get exited with 1: error: the keyring is locked; instead of the Docker config, pass --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD`,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(`${result.stdout}${result.stderr}`).not.toContain(secret);
  });

  it('stops with exit 2 on an identity token, saying how to log in instead, without showing it', async () => {
    // Prepare
    const secret = `t0ken-${randomBytes(9).toString('base64url')}`;
    const env = await helperEnv(
      { credHelpers: { '127.0.0.1:1': 'fake' } },
      { answers: { '127.0.0.1:1': { Username: '<token>', Secret: secret } } },
    );

    // Act
    const result = await runCli(['plan', '--registry', 'http://127.0.0.1:1', '--keep-last', '1'], { env });

    // Assess
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'docker-credential-fake holds an identity token for 127.0.0.1:1 (Username "<token>"), and identity tokens are not supported; instead of the Docker config, pass --username with --password-stdin, or set REGISTRY_USERNAME and REGISTRY_PASSWORD',
    );
    expect(`${result.stdout}${result.stderr}`).not.toContain(secret);
  });

  it('does not run a helper when --username and --password-stdin are given', async () => {
    // Prepare
    reg = await startRegistry({ auth: 'basic' });
    await pushImage(reg, 'private/app', 'x', {});
    const env = await helperEnv({ credsStore: 'fake' }, { otherwise: { exitCode: 1, stderr: 'broken' } });

    // Act
    const result = await runCli(
      [
        'plan',
        '--registry',
        reg.url,
        '--keep-last',
        '1',
        '--json',
        '--username',
        'janitor',
        '--password-stdin',
      ],
      { env, input: `${reg.credentials?.password}\n` },
    );

    // Assess
    expect(parsePlan(result).repositories.map((r) => r.name)).toEqual(['private/app']);
    expect(await helper?.requests()).toEqual([]);
  });
});

describe('storage on a Docker host', () => {
  let reg: TestRegistry | undefined;
  let docker: DockerStandIn | undefined;
  afterEach(async () => {
    await docker?.close();
    await reg?.stop();
    docker = undefined;
    reg = undefined;
  });

  it('reads the storage through docker exec in the registry container, and finds untagged manifests', async () => {
    // Prepare: an untagged manifest that only the storage knows of
    reg = await startRegistry();
    docker = await installDockerStandIn(reg);
    const untagged = await pushImage(reg, 'team/app', undefined, {});
    await backdate(reg, 'team/app', untagged.digest, 3);
    const current = await pushImage(reg, 'team/app', 'latest', {});

    // Act
    const result = await runCli(
      ['plan', '--registry', reg.url, '--storage-from-host', '--keep-last', '1', '--json'],
      { env: docker.env },
    );

    // Assess
    const plan = parsePlan(result);
    const manifests = plan.repositories.find((r) => r.name === 'team/app')?.manifests ?? [];
    expect(manifests.map((m) => [m.digest, m.decision, m.reason]).sort()).toEqual(
      [
        [current.digest, 'keep', expect.any(String)],
        [untagged.digest, 'delete', 'untagged for 3d'],
      ].sort(),
    );
    const calls = await docker.calls();
    expect(calls.map((argv) => argv.slice(0, 3))).toEqual([
      ['exec', 'registry', 'sh'],
      ['exec', 'registry', 'sh'],
    ]);
    expect(await headManifest(reg, 'team/app', untagged.digest)).toBe(untagged.digest);
  });

  it("shows Docker's own error when the storage cannot be read through Docker", async () => {
    reg = await startRegistry();
    docker = await installDockerStandIn(reg, { failEveryCall: DAEMON_DOWN });

    const result = await runCli(['plan', '--registry', reg.url, '--storage-from-host', '--keep-last', '1'], {
      env: docker.env,
    });

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`could not read the registry storage in the container: ${DAEMON_DOWN}\n`);
    expect(result.stderr).toMatch(/^error: the inventory failed on the registry host \(exit 1\)/m);
    expect(result.stdout).toBe('');
  });

  it('answers a --storage-root without registry data with the command that prints the host path', async () => {
    // Prepare: the registry's storage is a container volume; the user gives a folder that is not it
    const registry = await startRegistry();
    reg = registry;
    docker = await installDockerStandIn(registry);
    await pushImage(registry, 'app', 'v1', {});
    const wrong = await mkdtemp(join(tmpdir(), 'not-a-registry-'));
    const plan = (root: string) =>
      runCli(['plan', '--registry', registry.url, '--storage-root', root, '--keep-last', '1']);

    // Act
    const refused = await plan(wrong);

    // Assess: a few short lines, the command among them; running it gives the root that works
    expect(refused.code).toBe(2);
    const lines = refused.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`error: --storage-root ${wrong} holds no registry data`);
    expect(lines.length).toBeLessThanOrEqual(8);
    const command = lines.find((line) => line.trimStart().startsWith('docker inspect '))?.trim() ?? '';
    expect(lines.filter((line) => line.trim() !== command).every((line) => line.length <= 80)).toBe(true);
    expect(refused.stderr).toContain('--storage-from-host');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
    const printed = await run('sh', ['-c', command], { env: docker.env });
    expect(printed.stdout.trim()).toBe(registry.root);
    expect((await plan(printed.stdout.trim())).code).toBe(0);
  });
});
