import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../lambda/domain/plan.js';
import { PROJECT_ROOT } from '../scripts/build.js';
import { buildBinary } from '../scripts/build-binary.js';
import { type DockerStandIn, installDockerStandIn } from './support/docker-stand-in.js';
import { headManifest } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { pushStaleAndCurrent } from './support/storage.js';

const exec = promisify(execFile);

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runCommand(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<Ran> {
  try {
    const { stdout, stderr } = await exec(file, args, { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

const version = async () =>
  (JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let scratch: string;
let reg: TestRegistry;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'registry-janitor-package-'));
  reg = await startRegistry();
});

afterAll(async () => {
  await reg?.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** An environment with nothing of the checkout or of the user's Docker logins in it. */
function bareEnv(path: string): NodeJS.ProcessEnv {
  return { PATH: path, HOME: scratch, DOCKER_CONFIG: join(scratch, 'no-docker-config') };
}

describe('the npm package', () => {
  let bin: string;
  let prefix: string;

  beforeAll(async () => {
    // Prepare: pack the checkout and install the tarball into an empty prefix, as on a registry host
    const packDir = join(scratch, 'pack');
    prefix = join(scratch, 'prefix');
    await mkdir(packDir);
    const { stdout } = await exec('npm', ['pack', '--silent', '--pack-destination', packDir], {
      cwd: PROJECT_ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
    const tarball = join(packDir, stdout.trim().split('\n').at(-1) ?? '');
    await exec(
      'npm',
      ['install', '-g', '--omit=dev', '--no-audit', '--no-fund', '--prefix', prefix, tarball],
      {
        cwd: scratch,
      },
    );
    bin = join(prefix, 'bin', 'registry-janitor');
  }, 180_000);

  it('installs without dependencies in under 20 MB and prints its version', async () => {
    const installed = join(prefix, 'lib', 'node_modules', 'registry-janitor');

    const result = await runCommand(bin, ['--version'], bareEnv(`${join(prefix, 'bin')}:/usr/bin:/bin`));

    expect(result).toMatchObject({ code: 0, stdout: `${await version()}\n` });
    expect(await diskUsage(prefix)).toBeLessThan(20 * 1024 * 1024);
    expect((await readdir(installed)).sort()).toEqual(
      ['README.md', 'dist', 'host-setup', 'package.json', 'policy.schema.json'].sort(),
    );
  });

  it('plans against a real registry from the installed command', async () => {
    const { stale, current } = await pushStaleAndCurrent(reg, 'pkg/app');

    const result = await runCommand(
      bin,
      ['plan', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1', '--json'],
      bareEnv(`${join(prefix, 'bin')}:/usr/bin:/bin`),
    );

    expect(result.code).toBe(0);
    const plan = JSON.parse(result.stdout) as Plan;
    const repository = plan.repositories.find((r) => r.name === 'pkg/app');
    expect(repository?.tags.map((t) => [t.tag, t.digest, t.decision])).toEqual([
      ['new', current.digest, 'keep'],
      ['old', stale.digest, 'delete'],
    ]);
  });
});

describe('the single executable', () => {
  let binary: string;
  let docker: DockerStandIn;
  /** A PATH without Node on it: the executable must not need one. */
  let noNode: string;

  beforeAll(async () => {
    binary = join(scratch, 'registry-janitor');
    await buildBinary(binary);
    noNode = join(scratch, 'empty-bin');
    await mkdir(noNode);
    docker = await installDockerStandIn(reg);
  }, 180_000);

  afterAll(async () => {
    await docker?.close();
  });

  it('plans, cleans and verifies with no Node on the PATH', async () => {
    const { stale, current } = await pushStaleAndCurrent(reg, 'sea/app');
    const common = ['--registry', reg.url, '--repo', 'sea/*'];

    const versionRun = await runCommand(binary, ['--version'], bareEnv(noNode));
    const planRun = await runCommand(
      binary,
      ['plan', ...common, '--storage-root', reg.root, '--keep-last', '1'],
      bareEnv(noNode),
    );
    const cleanRun = await runCommand(
      binary,
      ['clean', ...common, '--storage-root', reg.root, '--keep-last', '1', '--yes'],
      bareEnv(noNode),
    );
    const verifyRun = await runCommand(binary, ['verify', ...common], bareEnv(noNode));

    expect(versionRun.stdout).toBe(`${await version()}\n`);
    expect(planRun).toMatchObject({ code: 0, stderr: '' });
    expect(planRun.stdout).toMatch(/old\s+\S+\s+will delete/);
    expect(cleanRun.code).toBe(0);
    expect(cleanRun.stdout).toContain('Deleted 1 manifest,');
    expect(await headManifest(reg, 'sea/app', 'old')).toBeUndefined();
    expect(await headManifest(reg, 'sea/app', 'new')).toBe(current.digest);
    expect(stale.digest).not.toBe(current.digest);
    expect(verifyRun).toMatchObject({ code: 0 });
    expect(verifyRun.stdout).toMatch(/^All 1 tag resolves? completely/m);
  });

  it('collects garbage on the host with the host script it carries', async () => {
    await pushStaleAndCurrent(reg, 'sea/gc');
    const env = { ...bareEnv(`${docker.binDir}:/usr/bin:/bin`), ...docker.env, HOME: scratch };

    const result = await runCommand(
      binary,
      [
        'clean',
        '--registry',
        reg.url,
        '--repo',
        'sea/gc',
        '--storage-root',
        reg.root,
        '--keep-last',
        '1',
        '--gc',
        'local',
        '--lock-file',
        join(scratch, 'lock'),
        '--log-dir',
        join(scratch, 'logs'),
        '--upload-wait',
        '0',
        '--yes',
      ],
      env,
    );

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Garbage collection: done, mode online/m);
  });
});
