import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, OPTIONS, readmeWithOptions } from '../lambda/command-line.js';
import type { Plan } from '../lambda/domain/plan.js';
import { runCli } from './cli-runner.js';
import { headManifest, pushImage } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { backdate, pushStaleAndCurrent } from './support/storage.js';

const widest = (text: string) => Math.max(...text.split('\n').map((line) => line.length));

describe('help', () => {
  it('shows each command its own options and examples, within 80 columns', async () => {
    for (const command of COMMANDS) {
      const viaHelp = await runCli(['help', command]);
      const viaFlag = await runCli([command, '--help']);

      expect(viaHelp).toMatchObject({ code: 0, stderr: '' });
      expect(viaFlag.stdout).toBe(viaHelp.stdout);
      expect(viaHelp.stdout.startsWith(`Usage: registry-janitor ${command} [options]\n`)).toBe(true);
      expect(viaHelp.stdout).toMatch(new RegExp(`\\nExamples\\n {2}registry-janitor ${command} `));
      expect(widest(viaHelp.stdout)).toBeLessThanOrEqual(80);
      const listed = [...viaHelp.stdout.matchAll(/^ {2}(?:-\w, )?--([a-z-]+)/gm)].map((m) => m[1]);
      const own = Object.entries(OPTIONS)
        .filter(([, option]) => (option.commands as readonly string[]).includes(command))
        .map(([name]) => name);
      expect(listed.sort()).toEqual(own.sort());
    }
    expect((await runCli(['help', 'verify'])).stdout).not.toContain('--keep-last');
  });

  it('uses the width of the terminal it is given', async () => {
    const wide = await runCli(['help', 'clean'], { env: { COLUMNS: '120' } });

    expect(widest(wide.stdout)).toBeLessThanOrEqual(120);
    expect(widest(wide.stdout)).toBeGreaterThan(80);
  });

  it('prints the commands, and exits 2, when run with no arguments', async () => {
    const bare = await runCli([]);
    const asked = await runCli(['help']);

    expect(bare).toMatchObject({ code: 2, stdout: '' });
    expect(bare.stderr).toBe(asked.stdout);
    expect(asked.stdout).toMatch(/^Commands\n {2}plan +show what is stale/m);
    expect(asked.stdout).toMatch(/^ {2}gc +collect garbage on the registry host only/m);
    expect(asked.stdout).toMatch(/^ {2}du +show the space each repository takes/m);
  });

  it('keeps the README reference in step with the options', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');

    expect(readmeWithOptions(readme)).toBe(readme);
    for (const name of Object.keys(OPTIONS)) expect(readme).toContain(`--${name}`);
  });
});

describe('mistakes', () => {
  it('names an option of another command and the commands it belongs to', async () => {
    const result = await runCli(['verify', '--registry', 'http://127.0.0.1:1', '--keep-last', '3', '--yes']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'error: --keep-last: not an option of verify (only of plan, clean)\n' +
        'error: --yes: not an option of verify (only of clean)\n' +
        'Run registry-janitor help verify for its options and examples.\n',
    );
  });

  it('takes --state-dir only where a local collection may be left running', async () => {
    const result = await runCli([
      'clean',
      '--registry',
      'http://127.0.0.1:1',
      '--keep-last',
      '3',
      '--gc',
      'ssm',
      '--instance-id',
      'i-0123456789abcdef0',
      '--state-dir',
      '/var/lib/registry-janitor',
      '--yes',
    ]);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'error: --state-dir: only with --gc local\n' +
        'Run registry-janitor help clean for its options and examples.\n',
    );
  });

  it('says how to give a value that is missing, or one that starts with a dash', async () => {
    const result = await runCli(['plan', '--registry', 'http://127.0.0.1:1', '--keep-days']);
    const negative = await runCli(['plan', '--registry', 'http://127.0.0.1:1', '--keep-days', '-1']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'error: --keep-days: needs a value (D); one that starts with "-" goes after "=", as in --keep-days=-1\n',
    );
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain(
      'error: --keep-days: expected a number of days or a duration such as 30, 36h or 2w, got "-1"',
    );
    expect(negative.stderr).not.toMatch(/ambiguous|\n\s+at /);
  });

  it('refuses an --html file that cannot be written, before anything is scanned, naming the flag and the fix', async () => {
    const missing = await runCli([
      'du',
      '--registry',
      'http://127.0.0.1:1',
      '--html',
      '/nonexistent-folder/report.html',
    ]);
    const folder = await runCli([
      'plan',
      '--registry',
      'http://127.0.0.1:1',
      '--keep-last',
      '1',
      '--html',
      tmpdir(),
    ]);

    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toBe(
      'error: --html: cannot write /nonexistent-folder/report.html: the folder /nonexistent-folder does not exist; ' +
        'give a file in a folder you may write to\n' +
        'Run registry-janitor help du for its options and examples.\n',
    );
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain(`error: --html: cannot write ${tmpdir()}: it is a folder; give a file`);
  });

  it('takes no policy for du, which deletes nothing', async () => {
    const result = await runCli(['du', '--registry', 'http://127.0.0.1:1', '--keep-last', '3']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: --keep-last: not an option of du (only of plan, clean)\n');
  });

  it('suggests the command meant by help', async () => {
    const result = await runCli(['help', 'gcc']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: help: unknown command "gcc": did you mean gc?');
  });
});

describe('against a registry', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry({ auth: 'basic' });
  });

  afterAll(async () => {
    await reg?.stop();
  });

  const login = () => ({
    env: { REGISTRY_USERNAME: reg.credentials?.username, REGISTRY_PASSWORD: reg.credentials?.password },
  });

  it('fits a plan with a long tag into the terminal, and keeps JSON whole', async () => {
    const tag = `feature-${'x'.repeat(100)}-build-42`;
    const old = await pushImage(reg, 'wide/app', tag, {});
    await backdate(reg, 'wide/app', old.digest, 30, tag);
    await pushImage(reg, 'wide/app', 'latest', {});
    const args = [
      'plan',
      '--registry',
      reg.url,
      '--repo',
      'wide/*',
      '--storage-root',
      reg.root,
      '--keep-last',
      '1',
    ];

    const narrow = await runCli(args, login());
    const wide = await runCli(args, { env: { ...login().env, COLUMNS: '200' } });
    const json = await runCli([...args, '--json'], { env: { ...login().env, COLUMNS: '40' } });

    expect(narrow.code).toBe(0);
    expect(widest(narrow.stdout)).toBeLessThanOrEqual(80);
    expect(narrow.stdout).toMatch(/^ {2}feature-x+…x+-build-42 +[0-9a-f]{12} +will delete: stale:/m);
    expect(narrow.stdout).toMatch(/^ {2}latest +[0-9a-f]{12} +keep: among 1 most recent/m);
    expect(widest(wide.stdout)).toBeLessThanOrEqual(200);
    expect(wide.stdout).toContain(`  ${tag}  `);
    expect((JSON.parse(json.stdout) as Plan).repositories[0]?.tags.map((t) => t.tag)).toContain(tag);
  });

  it('plans with a keep-tag pattern that backtracks without end in JavaScript, against a long pushed tag', async () => {
    // Prepare: a tag of 61 characters on which /^(a+)+$/ never returns in JavaScript
    const hostile = `${'a'.repeat(60)}b`;
    const long = await pushImage(reg, 'redos/app', hostile, {});
    await backdate(reg, 'redos/app', long.digest, 30, hostile);
    const short = await pushImage(reg, 'redos/app', 'aaaa', {});
    await backdate(reg, 'redos/app', short.digest, 30, 'aaaa');

    // Act
    const result = await runCli(
      [
        'plan',
        '--registry',
        reg.url,
        '--repo',
        'redos/*',
        '--storage-root',
        reg.root,
        '--keep-last',
        '0',
        '--keep-tag',
        '^(a+)+$',
        '--timeout',
        '1h30m',
        '--json',
      ],
      login(),
    );

    // Assess
    expect(result.code).toBe(0);
    const tags = (JSON.parse(result.stdout) as Plan).repositories[0]?.tags;
    expect(tags?.map(({ tag, decision, reason }) => ({ tag, decision, reason }))).toEqual(
      expect.arrayContaining([
        { tag: 'aaaa', decision: 'keep', reason: 'matches keep-tag /^(a+)+$/' },
        expect.objectContaining({ tag: hostile, decision: 'delete' }),
      ]),
    );
    expect(await headManifest(reg, 'redos/app', hostile)).toBe(long.digest);
  });

  it('runs clean --dry-run as plan: shows the plan and deletes nothing', async () => {
    const { stale } = await pushStaleAndCurrent(reg, 'dry/app');

    const result = await runCli(
      [
        'clean',
        '--registry',
        reg.url,
        '--repo',
        'dry/*',
        '--storage-root',
        reg.root,
        '--keep-last',
        '1',
        '--dry-run',
      ],
      login(),
    );

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}old +[0-9a-f]{12} +will delete: stale/m);
    expect(result.stdout).not.toMatch(/^Deleted /m);
    expect(await headManifest(reg, 'dry/app', 'old')).toBe(stale.digest);
  });

  it('prints only the summary with --quiet', async () => {
    await pushStaleAndCurrent(reg, 'quiet/app');

    const result = await runCli(
      [
        'clean',
        '--registry',
        reg.url,
        '--repo',
        'quiet/*',
        '--storage-root',
        reg.root,
        '--keep-last',
        '1',
        '--yes',
        '--quiet',
      ],
      login(),
    );

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.trimEnd().split('\n')).toEqual([
      '1 repository scanned; tags: keep 1, delete 1; manifests: keep 1, delete 1',
      expect.stringMatching(
        /^Garbage collection will then free at most [\d.]+ KiB \(\d+ bytes in 3 blobs\)$/,
      ),
      '  upper bound: only some repositories were scanned; blobs they share with the',
      '    others may stay',
      'Deleted 1 manifest, skipped 0, failed 0',
      'Space is reclaimed when garbage collection runs on the registry host:',
      '  registry-janitor gc there, or clean with --gc local|ssm.',
      'Garbage collection: not run (not requested)',
      expect.stringMatching(/^Reclaimable: at most [\d.]+ KiB \(\d+ bytes\), once garbage collection runs$/),
      'Verified: all 1 kept tag resolve completely (1 manifest, 2 blobs)',
      expect.stringMatching(/^Done in [\d.]+ s\.$/),
    ]);
  });

  it('logs every request with --verbose, and never the credentials', async () => {
    await pushImage(reg, 'loud/app', 'v1', {});
    const { username = '', password = '' } = reg.credentials ?? {};

    const result = await runCli(['verify', '--registry', reg.url, '--repo', 'loud/*', '--verbose'], login());

    expect(result.code).toBe(0);
    const logged = result.stderr.split('\n').filter((line) => line.startsWith('http: '));
    expect(logged).toContainEqual(
      expect.stringMatching(/^http: GET http:\/\/127\.0\.0\.1:\d+\/v2\/_catalog\?n=1000 200 \d+ ms$/),
    );
    expect(logged).toContainEqual(
      expect.stringMatching(/^http: GET \S+\/v2\/loud\/app\/manifests\/v1 200 \d+ ms$/),
    );
    expect(logged).toContainEqual(
      expect.stringMatching(/^http: HEAD \S+\/v2\/loud\/app\/blobs\/sha256:[0-9a-f]{64} 200 \d+ ms$/),
    );
    expect(result.stderr).not.toContain(password);
    expect(result.stderr).not.toContain(Buffer.from(`${username}:${password}`).toString('base64'));
    expect(result.stderr.toLowerCase()).not.toContain('authorization');
  });
});
