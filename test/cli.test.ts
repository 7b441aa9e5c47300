import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parsePlan, runCli } from './cli-runner.js';
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
      'error: --keep-last: expected a whole number from 0 to 9007199254740991, got "ten"',
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
      `error: ${file}: rules[0].keepDays: Invalid input: expected number, received string`,
    );
  });

  it('refuses clean without --yes when nobody can answer the question', async () => {
    const result = await runCli(['clean', '--registry', 'http://127.0.0.1:1', '--keep-last', '3']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('pass --yes to confirm when not running on a terminal');
  });

  it('rejects an unknown command and an unknown flag', async () => {
    expect((await runCli(['prune', '--registry', 'http://x', '--keep-last', '1'])).stderr).toContain(
      'unknown command "prune": use plan, clean, verify',
    );
    expect((await runCli(['plan', '--keep-lats', '1'])).stderr).toContain("Unknown option '--keep-lats'");
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
    const bin = new URL('../bin/registry-janitor.js', import.meta.url).pathname;

    const help = await run(process.execPath, [bin, '--help']);
    const version = await run(process.execPath, [bin, '--version']);

    expect(help.stdout).toMatch(/^Usage: registry-janitor <plan\|clean\|verify> --registry URL/);
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
    const bin = new URL('../bin/registry-janitor.js', import.meta.url).pathname;

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
    expect(calls.map((argv) => argv.slice(0, 3))).toEqual([['exec', 'registry', 'sh']]);
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
