import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../scripts/run-cli.js';
import { type DockerStandIn, installDockerStandIn } from './support/docker-stand-in.js';
import { headManifest } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { pushStaleAndCurrent } from './support/storage.js';

const exec = promisify(execFile);
const SETUP = join(PROJECT_ROOT, 'host-setup');

/** The command a unit or cron line runs, with /etc/registry-janitor/ moved to `etc`. */
function relocate(command: string, etc: string): string {
  return command.replaceAll('/etc/registry-janitor/', `${etc}/`);
}

describe('the nightly run on the host', () => {
  let reg: TestRegistry;
  let docker: DockerStandIn;
  let scratch: string;
  let etc: string;
  let bin: string;

  beforeEach(async () => {
    reg = await startRegistry();
    docker = await installDockerStandIn(reg);
    scratch = await mkdtemp(join(tmpdir(), 'registry-janitor-nightly-'));
    etc = join(scratch, 'etc');
    bin = join(scratch, 'bin');
    await mkdir(etc);
    await mkdir(bin);
    // registry-janitor on PATH, as the package installs it
    await writeFile(
      join(bin, 'registry-janitor'),
      `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(PROJECT_ROOT, 'scripts', 'cli-from-source.js'))} "$@"\n`,
    );
    await chmod(join(bin, 'registry-janitor'), 0o755);
    const shipped = await readFile(join(SETUP, 'environment'), 'utf8');
    await writeFile(
      join(etc, 'environment'),
      shipped.replace(/^REGISTRY_URL=.*$/m, `REGISTRY_URL=${reg.url}`),
    );
    await writeFile(
      join(etc, 'policy.json'),
      JSON.stringify({ defaults: { keepLast: 1, untaggedGrace: '1h' } }),
    );
  });

  afterEach(async () => {
    await docker?.close();
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  // Where the host keeps them by default (/var/lock, /var/log) is not the test's to write.
  const hostPaths = () =>
    `--lock-file ${join(scratch, 'lock')} --log-dir ${join(scratch, 'logs')} --upload-wait 0`;
  const env = () => ({ ...docker.env, PATH: `${bin}:${docker.env.PATH}`, HOME: scratch });

  async function expectCleaned(stdout: string): Promise<void> {
    expect(stdout).toMatch(/^1 repository scanned; tags: keep 1, delete 1; manifests: keep 1, delete 1$/m);
    expect(stdout).toMatch(/^Deleted 1 manifest, skipped 0, failed 0$/m);
    expect(stdout).toMatch(/^Garbage collection: done, mode online/m);
    expect(stdout).toMatch(/^Verified: all 1 kept tag resolve completely/m);
    expect(stdout).not.toMatch(/TAG +DIGEST/);
    expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
  }

  it('runs the cron line as cron would: with sh, the environment file and --quiet', async () => {
    await pushStaleAndCurrent(reg, 'app');
    const cron = await readFile(join(SETUP, 'registry-janitor.cron'), 'utf8');
    const line = cron.split('\n').find((l) => /^\d/.test(l)) ?? '';
    const [minute, hour, , , , user, ...command] = line.split(' ');

    const result = await exec('sh', ['-c', `${relocate(command.join(' '), etc)} ${hostPaths()}`], {
      env: env(),
    });

    expect([minute, hour, user]).toEqual(['0', '3', 'root']);
    expect(result.stderr).toBe('');
    await expectCleaned(result.stdout);
  });

  it('runs the service as systemd would: its ExecStart with its EnvironmentFile', async () => {
    await pushStaleAndCurrent(reg, 'app');
    const unit = await readFile(join(SETUP, 'registry-janitor.service'), 'utf8');
    const setting = (key: string) => unit.match(new RegExp(`^${key}=(.*)$`, 'm'))?.[1] ?? '';
    const environment = Object.fromEntries(
      (await readFile(relocate(setting('EnvironmentFile'), etc), 'utf8'))
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const [program, ...args] = `${relocate(setting('ExecStart'), etc)} ${hostPaths()}`.split(' ');

    const result = await exec(program ?? '', args, { env: { ...env(), ...environment } });

    expect(setting('Type')).toBe('oneshot');
    expect(result.stderr).toBe('');
    await expectCleaned(result.stdout);
  });

  it('ships a policy the command accepts', async () => {
    await writeFile(join(etc, 'policy.json'), await readFile(join(SETUP, 'policy.json'), 'utf8'));

    const result = await exec(
      join(bin, 'registry-janitor'),
      ['plan', '--registry', reg.url, '--policy', join(etc, 'policy.json'), '--quiet'],
      { env: env() },
    );

    expect(result.stdout).toMatch(/^0 repositories scanned/m);
  });
});
