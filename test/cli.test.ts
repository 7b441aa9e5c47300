import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from './cli-runner.js';
import { headManifest, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { blobDataPath, setRevisionPushTime, setTagPushTime } from './support/storage.js';

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

  it('rejects an unknown command and an unknown flag, saying what was meant', async () => {
    const command = await runCli(['plna', '--registry', 'http://x', '--keep-last', '1']);
    const flag = await runCli(['plan', '--keep-lats', '1']);

    expect(command).toMatchObject({ code: 2, stdout: '' });
    expect(command.stderr).toBe(
      'error: unknown command "plna": did you mean plan? (the commands are plan, clean, gc, verify)\n' +
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
