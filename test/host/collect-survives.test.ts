import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalRunner } from '../../lambda/host/local-runner.js';
import type { HostParams } from '../../lambda/ports.js';
import { runCli } from '../cli-runner.js';
import {
  deleteManifest,
  headManifest,
  type PushedImage,
  pushImage,
  registryRequest,
} from '../support/images.js';
import {
  type HostFixture,
  lockReleased,
  readMarker,
  startHostFixture,
  startLikeAgent,
} from './host-fixture.js';

const modes = ['online', 'stopped'] as const;
type Mode = (typeof modes)[number];

/** What a user checks first: does the registry answer its API? */
async function serving(host: HostFixture): Promise<boolean> {
  try {
    const res = await registryRequest(host.reg, 'GET', '/v2/');
    return res.status === 200 || res.status === 401;
  } catch {
    return false;
  }
}

/** The verbs of the docker calls made after the collector was started. */
async function verbsAfterCollector(host: HostFixture): Promise<string[]> {
  const calls = await host.docker.calls();
  const at = calls.findIndex((argv) => argv.includes('garbage-collect'));
  return calls.slice(at + 1).map((argv) => argv[0] ?? '');
}

const bringBack = (mode: Mode) => (mode === 'stopped' ? 'start' : 'restart');

describe.each(modes)('a %s collection whose command is killed mid-collection', (mode) => {
  let host: HostFixture;
  let keep: PushedImage;

  const params = (): HostParams => ({ ...host.params, gcMode: mode });

  async function setUp(): Promise<void> {
    host = await startHostFixture({ docker: { holdGarbageCollect: 'once' } });
    keep = await pushImage(host.reg, 'app', 'keep');
  }

  afterEach(async () => {
    await host?.close();
  });

  it('brings the registry back by itself, holding the lock until it has', async () => {
    await setUp();
    const agent = await startLikeAgent(host, 'collect', params());
    await host.docker.garbageCollectHeld();
    const servedDuring = await serving(host);
    const marker = await readMarker(host.logDir);
    if (!marker) throw new Error('the collection left no marker');
    // Frozen, the detached part cannot react before the kill is over and a second collection has tried.
    process.kill(-marker.pid, 'SIGSTOP');

    agent.kill();
    const killed = await agent.done;
    const second = await host.run({ RJ_ACTION: 'collect' });
    process.kill(-marker.pid, 'SIGCONT');
    await lockReleased(host.lockFile);

    expect(servedDuring).toBe(mode === 'online');
    expect(marker.pid).not.toBe(agent.pid);
    expect(killed).toMatchObject({ signal: 'SIGKILL', summary: undefined });
    expect(second.summary).toMatchObject({ status: 'skipped', reason: 'another collection is running' });
    expect(await serving(host)).toBe(true);
    expect(await verbsAfterCollector(host)).toContain(bringBack(mode));
    expect(await readMarker(host.logDir)).toBeUndefined();
    const log = await readFile(marker.log, 'utf8');
    expect(log).toContain('the caller stopped waiting');
    expect(log).toMatch(/garbage-collect exited (143|137)/);
    expect(await headManifest(host.reg, 'app', 'keep')).toBe(keep.digest);

    const recovered = await host.run({ RJ_ACTION: 'recover', RJ_GC_MODE: mode });
    expect(recovered.summary).toMatchObject({
      action: 'recover',
      status: 'nothing to do',
      reason: 'the registry is running and no collection was interrupted',
      restarted: false,
    });
  });

  it('is brought back by recover when its detached part was killed too, and the next collection runs', async () => {
    await setUp();
    const agent = await startLikeAgent(host, 'collect', params());
    await host.docker.garbageCollectHeld();
    const marker = await readMarker(host.logDir);
    if (!marker) throw new Error('the collection left no marker');

    agent.kill();
    process.kill(-marker.pid, 'SIGKILL');
    await agent.done;
    await lockReleased(host.lockFile);
    const left = { running: host.reg.isRunning(), marker: (await readMarker(host.logDir))?.pid };
    const before = (await host.docker.calls()).length;
    const recovered = await (await startLikeAgent(host, 'recover', params())).done;
    const recoverVerbs = (await host.docker.calls()).slice(before).map((argv) => argv[0]);

    expect(left).toEqual({ running: mode === 'online', marker: marker.pid });
    expect(recovered.exitCode).toBe(0);
    expect(recovered.summary).toMatchObject({
      action: 'recover',
      status: 'done',
      restarted: true,
      log: marker.log,
      reason: expect.stringMatching(
        mode === 'stopped'
          ? /^a collection started \S+Z did not finish \(log \S+\) and left the registry stopped: started it$/
          : /^a collection started \S+Z did not finish \(log \S+\): restarted the registry, whose blob cache may hold blobs the collector deleted$/,
      ),
    });
    expect(recoverVerbs).toContain(bringBack(mode));
    expect(await serving(host)).toBe(true);
    expect(await readMarker(host.logDir)).toBeUndefined();

    const next = await new LocalRunner({ env: host.docker.env }).run('collect', params());
    expect(next.summary).toMatchObject({ status: 'done', mode, restarted: true, gcExitCode: 0 });
    expect(await headManifest(host.reg, 'app', 'keep')).toBe(keep.digest);
  });
});

describe('a collection after one that did not finish', () => {
  let host: HostFixture;

  afterEach(async () => {
    await host?.close();
  });

  it('brings the registry back first, then collects', async () => {
    host = await startHostFixture({ docker: { holdGarbageCollect: 'once' } });
    const keep = await pushImage(host.reg, 'app', 'keep');
    const gone = await pushImage(host.reg, 'app', 'gone', { layerSizes: [4096] });
    await deleteManifest(host.reg, 'app', gone.digest);
    const params: HostParams = { ...host.params, gcMode: 'stopped' };
    const agent = await startLikeAgent(host, 'collect', params);
    await host.docker.garbageCollectHeld();
    const marker = await readMarker(host.logDir);
    if (!marker) throw new Error('the collection left no marker');
    agent.kill();
    process.kill(-marker.pid, 'SIGKILL');
    await agent.done;
    await lockReleased(host.lockFile);
    const stoppedBefore = !host.reg.isRunning();

    const run = await new LocalRunner({ env: host.docker.env }).run('collect', params);

    expect(stoppedBefore).toBe(true);
    expect(run.summary).toMatchObject({ status: 'done', mode: 'stopped', restarted: true, gcExitCode: 0 });
    expect(run.summary?.blobsDeleted).toBeGreaterThan(0);
    expect(run.stderr).toMatch(
      /a collection started \S+Z did not finish \(log \S+\): the registry was started before this collection/,
    );
    expect(await readFile(run.summary?.log as string, 'utf8')).toContain(
      'the registry was started before this collection',
    );
    expect(await readMarker(host.logDir)).toBeUndefined();
    expect(await serving(host)).toBe(true);
    expect(await headManifest(host.reg, 'app', 'keep')).toBe(keep.digest);
  });
});

describe('registry-janitor gc after a collection killed with its watchdog', () => {
  let host: HostFixture;

  afterEach(async () => {
    await host?.close();
  });

  it('starts the registry the collection left stopped, then scans and collects', async () => {
    host = await startHostFixture({ docker: { holdGarbageCollect: 'once' } });
    await pushImage(host.reg, 'app', 'keep');
    const gone = await pushImage(host.reg, 'app', 'gone', { layerSizes: [4096] });
    await deleteManifest(host.reg, 'app', gone.digest);
    const agent = await startLikeAgent(host, 'collect', { ...host.params, gcMode: 'stopped' });
    await host.docker.garbageCollectHeld();
    const marker = await readMarker(host.logDir);
    if (!marker) throw new Error('the collection left no marker');
    agent.kill();
    process.kill(-marker.pid, 'SIGKILL');
    await agent.done;
    await lockReleased(host.lockFile);
    const stoppedBefore = !host.reg.isRunning();

    const result = await runCli(
      [
        'gc',
        '--registry',
        host.reg.url,
        '--gc',
        'local',
        '--gc-mode',
        'stopped',
        '--lock-file',
        host.lockFile,
        '--log-dir',
        host.logDir,
        '--upload-wait',
        '0',
      ],
      { env: host.docker.env },
    );

    expect(stoppedBefore).toBe(true);
    expect(result.code).toBe(0);
    expect(result.stderr.replace(/\n +/g, ' ')).toMatch(
      /^recover done: a collection started \S+Z did not finish \(log \S+\) and left the registry stopped: started it\n$/,
    );
    expect(result.stdout).toMatch(
      /^Garbage collection: done, mode stopped, registry 2\.8\.2, [1-9]\d* blobs deleted/m,
    );
    expect(await serving(host)).toBe(true);
  });
});

describe('recover', () => {
  let host: HostFixture;

  afterEach(async () => {
    await host?.close();
  });

  it('has nothing to do when the registry runs and no collection was interrupted', async () => {
    host = await startHostFixture();

    const result = await host.run({ RJ_ACTION: 'recover' });

    expect(result.exitCode).toBe(0);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(result.summary).toMatchObject({
      action: 'recover',
      status: 'nothing to do',
      reason: 'the registry is running and no collection was interrupted',
      restarted: false,
      log: null,
    });
    expect((await host.docker.calls()).map((argv) => argv[0])).toEqual(['inspect']);
  });

  it('starts a stopped registry container', async () => {
    host = await startHostFixture();
    await host.reg.halt();

    const result = await host.run({ RJ_ACTION: 'recover' });

    expect(result.summary).toMatchObject({
      status: 'done',
      reason: 'the registry container was stopped: started it',
      restarted: true,
    });
    expect(await serving(host)).toBe(true);
  });

  it('leaves a running collection alone: its own watchdog brings the registry back', async () => {
    host = await startHostFixture();
    const holder = spawn('flock', ['-o', host.lockFile, '-c', 'echo locked; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    try {
      await once(holder.stdout, 'data');

      const result = await host.run({ RJ_ACTION: 'recover', RJ_READY_SECONDS: '0' });

      expect(result.summary).toMatchObject({
        status: 'nothing to do',
        reason: 'another collection is running: it brings the registry back when it ends',
      });
      expect(await host.docker.calls()).toEqual([]);
    } finally {
      const exited = once(holder, 'exit');
      if (holder.pid !== undefined) process.kill(-holder.pid, 'SIGTERM');
      await exited;
    }
  });

  it('fails with what Docker said when the registry cannot be started', async () => {
    host = await startHostFixture();
    await host.reg.halt();

    const result = await host.run({ RJ_ACTION: 'recover', RJ_CONTAINER: 'registry-2' });

    expect(result.exitCode).toBe(1);
    expect(result.summary).toMatchObject({
      action: 'recover',
      status: 'failed',
      reason: 'could not inspect the registry container: Error: No such object: registry-2',
      restarted: false,
    });
  });
});
