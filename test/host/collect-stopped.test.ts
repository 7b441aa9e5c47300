import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRunner } from '../../lambda/host/local-runner.js';
import type { HostParams } from '../../lambda/ports.js';
import { type DockerStandInOptions, STAND_IN_IMAGE_ID } from '../support/docker-stand-in.js';
import { deleteManifest, headManifest, type PushedImage, pushImage } from '../support/images.js';
import { blobSizes, freedBytes } from '../support/storage.js';
import { type HostFixture, startHostFixture } from './host-fixture.js';

describe('collect with the registry stopped', () => {
  let host: HostFixture;
  let keep: PushedImage;

  async function setUp(docker: DockerStandInOptions = {}): Promise<void> {
    host = await startHostFixture({ docker });
    keep = await pushImage(host.reg, 'app', 'keep');
    const gone = await pushImage(host.reg, 'app', 'gone', { layerSizes: [4096] });
    await deleteManifest(host.reg, 'app', gone.digest);
  }

  const params = (extra: HostParams = {}): HostParams => ({ ...host.params, gcMode: 'stopped', ...extra });

  afterEach(async () => {
    await host?.close();
  });

  it('stops the registry, collects in a one-off container of the same image, and starts it again', async () => {
    await setUp({ containerEnv: ['PATH=/bin', 'REGISTRY_STORAGE_DELETE_ENABLED=true', 'OTHER=1'] });
    const before = await blobSizes(host.reg);

    const run = await new LocalRunner({ env: host.docker.env }).run('collect', params());

    expect(run).toMatchObject({
      state: 'finished',
      exitCode: 0,
      output: '',
      summary: {
        status: 'done',
        mode: 'stopped',
        restarted: true,
        gcExitCode: 0,
        bytesFreed: freedBytes(before, await blobSizes(host.reg)),
      },
    });
    expect(run.summary?.bytesFreed).toBeGreaterThanOrEqual(4096);
    const log = await host.docker.log();
    const verbs = log.map((call) => call.argv[0]);
    const collector = log.find((call) => call.argv[0] === 'run');
    expect(collector).toEqual({
      argv: [
        'run',
        '--rm',
        '--name',
        expect.stringMatching(/^registry-janitor-gc-\d+-\d+$/),
        '--volumes-from',
        'registry',
        '--env-file',
        expect.any(String),
        '--entrypoint',
        '/bin/registry',
        STAND_IN_IMAGE_ID,
        'garbage-collect',
        '/etc/docker/registry/config.yml',
      ],
      registryRunning: false,
      env: ['REGISTRY_STORAGE_DELETE_ENABLED=true'],
    });
    expect(verbs.indexOf('stop')).toBeLessThan(verbs.indexOf('run'));
    expect(verbs.lastIndexOf('start')).toBeGreaterThan(verbs.indexOf('run'));
    expect(host.reg.isRunning()).toBe(true);
    expect(await headManifest(host.reg, 'app', 'keep')).toBe(keep.digest);
  });

  it('reports a failed collection and still starts the registry again', async () => {
    await setUp({ failGarbageCollect: true });
    const before = await blobSizes(host.reg);

    const run = await new LocalRunner({ env: host.docker.env }).run('collect', params());

    expect(run.exitCode).toBe(1);
    expect(run.summary).toMatchObject({
      status: 'failed',
      reason: `garbage collection failed: failed to garbage collect: the test asked this collection to fail; see the log ${run.summary?.log}`,
      gcExitCode: 1,
      restarted: true,
      bytesFreed: 0,
    });
    const log = await readFile(run.summary?.log as string, 'utf8');
    expect(log).toContain('failed to garbage collect: the test asked this collection to fail');
    expect(log).toContain(`registry-janitor: collect failed: ${run.summary?.reason}`);
    expect(host.reg.isRunning()).toBe(true);
    expect(await headManifest(host.reg, 'app', 'keep')).toBe(keep.digest);
    expect(await blobSizes(host.reg)).toEqual(before);
  });

  it('starts the registry again when the script is stopped during the collection', async () => {
    await setUp({ holdGarbageCollect: true });
    const abort = new AbortController();

    const running = new LocalRunner({ env: host.docker.env, signal: abort.signal }).run('collect', params());
    await host.docker.garbageCollectHeld();
    const stoppedDuringCollection = !host.reg.isRunning();
    abort.abort();
    const run = await running;

    expect(stoppedDuringCollection).toBe(true);
    expect(run).toMatchObject({
      stopped: 'aborted',
      exitCode: 143,
      summary: { status: 'failed', reason: 'interrupted', mode: 'stopped', restarted: true },
    });
    expect(host.reg.isRunning()).toBe(true);
    expect(await headManifest(host.reg, 'app', 'keep')).toBe(keep.digest);
  });
});

describe('collect online when it fails or is stopped', () => {
  let host: HostFixture;

  afterEach(async () => {
    await host?.close();
  });

  it('restarts the registry after a failed collection: it may have deleted blobs already', async () => {
    host = await startHostFixture({ docker: { failGarbageCollect: true } });
    await pushImage(host.reg, 'app', 'keep');

    const run = await new LocalRunner({ env: host.docker.env }).run('collect', host.params);

    expect(run.exitCode).toBe(1);
    expect(run.summary).toMatchObject({ status: 'failed', mode: 'online', restarted: true, gcExitCode: 1 });
    expect(run.summary?.warning).toBeUndefined();
    expect((await host.docker.calls()).filter((argv) => argv[0] === 'restart')).toHaveLength(1);
  });

  it('restarts the registry when the script is stopped during the collection', async () => {
    host = await startHostFixture({ docker: { holdGarbageCollect: true } });
    await pushImage(host.reg, 'app', 'keep');
    const abort = new AbortController();

    const running = new LocalRunner({ env: host.docker.env, signal: abort.signal }).run(
      'collect',
      host.params,
    );
    await host.docker.garbageCollectHeld();
    abort.abort();
    const run = await running;

    expect(run).toMatchObject({
      stopped: 'aborted',
      exitCode: 143,
      summary: { status: 'failed', reason: 'interrupted', mode: 'online', restarted: true },
    });
    expect((await host.docker.calls()).filter((argv) => argv[0] === 'restart')).toHaveLength(1);
    expect(host.reg.isRunning()).toBe(true);
  });
});
