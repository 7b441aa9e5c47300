import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAEMON_DOWN, V3_VERSION_LINE } from '../support/docker-stand-in.js';
import { deleteManifest, headManifest, type PushedImage, pushImage } from '../support/images.js';
import { skopeoPull, skopeoPushMultiArch } from '../support/skopeo.js';
import { blobSizes, freedBytes, startUpload, storageRoot } from '../support/storage.js';
import { type HostFixture, startHostFixture } from './host-fixture.js';

const GC_CALL = ['exec', 'registry', '/bin/registry', 'garbage-collect', '/etc/docker/registry/config.yml'];

const total = (sizes: Map<string, number>) => [...sizes.values()].reduce((sum, size) => sum + size, 0);

async function callsDuring<T>(
  host: HostFixture,
  work: () => Promise<T>,
): Promise<{ result: T; calls: string[][] }> {
  const before = (await host.docker.calls()).length;
  const result = await work();
  return { result, calls: (await host.docker.calls()).slice(before) };
}

const gcCalls = (calls: string[][]) => calls.filter((argv) => argv.includes('garbage-collect'));

describe('collect, online, against a real registry', () => {
  let host: HostFixture;
  let keep: PushedImage;
  let stale: PushedImage;

  beforeAll(async () => {
    host = await startHostFixture();
    keep = await pushImage(host.reg, 'team/app', 'keep', { layerSizes: [4096, 2048] });
    stale = await pushImage(host.reg, 'team/app', 'stale', { layerSizes: [8192, 1024] });
    await deleteManifest(host.reg, 'team/app', stale.digest);
  });

  afterAll(async () => {
    await host?.close();
  });

  it('frees exactly the blobs of deleted manifests, reports them, restarts the registry and keeps stdout to the summary', async () => {
    const before = await blobSizes(host.reg);

    const { result, calls } = await callsDuring(host, () => host.run({ RJ_ACTION: 'collect' }));

    const after = await blobSizes(host.reg);
    const removed = [...before.keys()].filter((digest) => !after.has(digest));
    expect(removed.sort()).toEqual(
      [stale.digest, stale.config.digest, ...stale.layers.map((l) => l.digest)].sort(),
    );
    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({
      action: 'collect',
      status: 'done',
      mode: 'online',
      version: '2.8.2',
      blobsDeleted: removed.length,
      manifestsDeleted: 0,
      bytesBefore: total(before),
      bytesAfter: total(after),
      bytesFreed: freedBytes(before, after),
      restarted: true,
      gcExitCode: 0,
    });
    expect(result.summary?.bytesFreed).toBe(
      (result.summary?.bytesBefore as number) - (result.summary?.bytesAfter as number),
    );
    expect(result.summary?.diskUsedPercentBefore).toEqual(expect.any(Number));
    expect(result.summary?.warning).toBeUndefined();
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stdout.length).toBeLessThan(1000);

    expect(gcCalls(calls)).toEqual([GC_CALL]);
    const gcAt = calls.findIndex((argv) => argv.includes('garbage-collect'));
    expect(calls.findIndex((argv) => argv[0] === 'restart')).toBeGreaterThan(gcAt);

    const log = await readFile(result.summary?.log as string, 'utf8');
    expect(dirnameOf(result.summary?.log as string)).toBe(host.logDir);
    for (const digest of removed) expect(log).toContain(`blob eligible for deletion: ${digest}`);
    expect(await headManifest(host.reg, 'team/app', 'keep')).toBe(keep.digest);
    expect(await skopeoPull(host.reg, 'team/app', 'keep')).toEqual({ ok: true });
  });

  it('keeps only the ten newest collector logs', async () => {
    for (let day = 10; day < 22; day++)
      await writeFile(join(host.logDir, `gc-202001${day}T000000Z-1.log`), 'old\n');

    const result = await host.run({ RJ_ACTION: 'collect' });

    const logs = (await readdir(host.logDir)).sort();
    expect(logs).toHaveLength(10);
    expect(logs).toContain(basenameOf(result.summary?.log as string));
    expect(logs).not.toContain('gc-20200110T000000Z-1.log');
    expect((await stat(result.summary?.log as string)).mode & 0o077).toBe(0);
  });

  it('fails when the registry does not answer /v2/ after the collection', async () => {
    const result = await host.run({ RJ_ACTION: 'collect', RJ_REGISTRY_PORT: '5001', RJ_READY_SECONDS: '1' });

    expect(result.exitCode).toBe(1);
    expect(result.summary).toMatchObject({
      status: 'failed',
      reason: 'the registry did not answer /v2/ in time after the collection',
      restarted: true,
      gcExitCode: 0,
    });
  });

  it('refuses to run when the registry container is not running, and names an unknown container', async () => {
    await host.reg.halt();
    try {
      const stopped = await host.run({ RJ_ACTION: 'collect' });
      expect(stopped.exitCode).toBe(1);
      expect(stopped.summary).toMatchObject({
        status: 'failed',
        reason: 'the registry container is not running',
      });
    } finally {
      await host.reg.resume();
    }

    const { result: unknown, calls } = await callsDuring(host, () =>
      host.run({ RJ_ACTION: 'collect', RJ_CONTAINER: 'registry-2' }),
    );
    expect(unknown.exitCode).toBe(1);
    expect(unknown.summary).toMatchObject({
      status: 'failed',
      reason: 'could not inspect the registry container: Error: No such object: registry-2',
    });
    expect(gcCalls(calls)).toEqual([]);
  });
});

describe('collect when Docker fails', () => {
  let host: HostFixture | undefined;

  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  it("gives Docker's own error in the summary's reason and on stderr", async () => {
    host = await startHostFixture({ docker: { failEveryCall: DAEMON_DOWN } });

    const result = await host.run({ RJ_ACTION: 'collect' });

    expect(result.exitCode).toBe(1);
    expect(result.summary).toMatchObject({
      status: 'failed',
      reason: `could not inspect the registry container: ${DAEMON_DOWN}`,
      gcExitCode: null,
      restarted: false,
    });
    expect(result.stderr).toContain(
      `collect failed: could not inspect the registry container: ${DAEMON_DOWN}`,
    );
  });

  it('keeps the summary one valid JSON line whatever Docker prints', async () => {
    const noisy = `Error response from daemon: "quoted" \\back\nsecond\tline\r\n${'x'.repeat(1000)}`;
    host = await startHostFixture({ docker: { failEveryCall: noisy } });

    const result = await host.run({ RJ_ACTION: 'collect' });

    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const reason = (JSON.parse(lines[0] ?? '') as { reason: string }).reason;
    expect(reason).toMatch(
      /^could not inspect the registry container: Error response from daemon: "quoted" \\back second line x+$/,
    );
    expect(reason.length).toBeLessThan(400);
  });
});

const dirnameOf = (path: string) => path.slice(0, path.lastIndexOf('/'));
const basenameOf = (path: string) => path.slice(path.lastIndexOf('/') + 1);

describe('collect with a multi-arch image', () => {
  let host: HostFixture;

  beforeAll(async () => {
    host = await startHostFixture();
  });

  afterAll(async () => {
    await host?.close();
  });

  it('keeps every platform of the image pullable and never runs the collector with --delete-untagged', async () => {
    const multi = await skopeoPushMultiArch(host.reg, 'multi', '1.0', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    const old = await pushImage(host.reg, 'multi', 'old');
    await deleteManifest(host.reg, 'multi', old.digest);

    const { result, calls } = await callsDuring(host, () => host.run({ RJ_ACTION: 'collect' }));

    expect(result.summary).toMatchObject({ status: 'done', restarted: true });
    expect(result.summary?.blobsDeleted).toBeGreaterThan(0);
    expect(await headManifest(host.reg, 'multi', '1.0')).toBe(multi.digest);
    expect(await skopeoPull(host.reg, 'multi', '1.0')).toEqual({ ok: true });
    const all = await host.docker.calls();
    expect(all.flat()).not.toContain('--delete-untagged');
    expect(all.flat()).not.toContain('-m');
    expect(gcCalls(calls)).toEqual([GC_CALL]);
  });
});

describe('collect on an empty registry', () => {
  let host: HostFixture;

  beforeAll(async () => {
    host = await startHostFixture();
  });

  afterAll(async () => {
    await host?.close();
  });

  it('is done with nothing collected and does not restart the registry', async () => {
    const { result, calls } = await callsDuring(host, () => host.run({ RJ_ACTION: 'collect' }));

    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'done',
      reason: 'the registry is empty: nothing to collect',
      blobsDeleted: 0,
      bytesBefore: 0,
      bytesAfter: 0,
      bytesFreed: 0,
      restarted: false,
      gcExitCode: 1,
    });
    expect(result.summary?.warning).toBeUndefined();
    expect(calls.filter((argv) => argv[0] === 'restart')).toEqual([]);
  });
});

describe('collect on registry 3', () => {
  let host: HostFixture;

  beforeAll(async () => {
    host = await startHostFixture({ docker: { registryVersion: V3_VERSION_LINE } });
    const gone = await pushImage(host.reg, 'app', 'gone');
    await deleteManifest(host.reg, 'app', gone.digest);
  });

  afterAll(async () => {
    await host?.close();
  });

  it('uses the v3 config path unless one is given', async () => {
    const { result, calls } = await callsDuring(host, () => host.run({ RJ_ACTION: 'collect' }));

    expect(result.summary).toMatchObject({ status: 'done', version: '3.0.0' });
    expect(gcCalls(calls)).toEqual([
      ['exec', 'registry', '/bin/registry', 'garbage-collect', '/etc/distribution/config.yml'],
    ]);

    const { calls: explicit } = await callsDuring(host, () =>
      host.run({ RJ_ACTION: 'collect', RJ_REGISTRY_CONFIG: '/etc/docker/registry/config.yml' }),
    );
    expect(gcCalls(explicit)).toEqual([GC_CALL]);
  });
});

describe('collect next to other work on the host', () => {
  let host: HostFixture;
  let gone: PushedImage;

  beforeAll(async () => {
    host = await startHostFixture();
    await pushImage(host.reg, 'app', 'keep');
    gone = await pushImage(host.reg, 'app', 'gone', { layerSizes: [4096] });
    await deleteManifest(host.reg, 'app', gone.digest);
  });

  afterAll(async () => {
    await host?.close();
  });

  it('skips when another collection holds the lock, without touching docker', async () => {
    const holder = spawn('flock', ['-o', host.lockFile, '-c', 'echo locked; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      detached: true,
    });
    try {
      await new Promise((resolve, reject) => {
        holder.stdout.once('data', resolve);
        holder.once('error', reject);
      });

      const { result, calls } = await callsDuring(host, () => host.run({ RJ_ACTION: 'collect' }));

      expect(result.exitCode).toBe(0);
      expect(result.summary).toMatchObject({ status: 'skipped', reason: 'another collection is running' });
      expect(calls).toEqual([]);
    } finally {
      const exited = once(holder, 'exit');
      if (holder.pid !== undefined) process.kill(-holder.pid, 'SIGTERM');
      await exited;
    }
  });

  it('waits for an upload in progress, then skips without collecting', async () => {
    await startUpload(host.reg, 'app');
    const before = await blobSizes(host.reg);
    const started = Date.now();

    const { result, calls } = await callsDuring(host, () =>
      host.run({ RJ_ACTION: 'collect', RJ_UPLOAD_WAIT_SECONDS: '5' }),
    );

    // The script measures the wait in whole seconds: five of them are at least four full seconds.
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'skipped',
      reason: 'pushes in progress',
      restarted: false,
    });
    expect(result.stderr).toContain('1 upload(s) in progress: waiting');
    expect(gcCalls(calls)).toEqual([]);
    expect(calls.filter((argv) => argv[0] === 'restart')).toEqual([]);
    expect(await blobSizes(host.reg)).toEqual(before);
  });

  it('does not wait for an upload abandoned longer ago than RJ_UPLOAD_RECENT_MINUTES', async () => {
    const uploads = join(storageRoot(host.reg), 'repositories', 'app', '_uploads');
    const longAgo = new Date(Date.now() - 2 * 3_600_000);
    for (const entry of await readdir(uploads, { recursive: true })) {
      await utimes(join(uploads, entry), longAgo, longAgo);
    }
    const before = await blobSizes(host.reg);

    const result = await host.run({ RJ_ACTION: 'collect', RJ_UPLOAD_RECENT_MINUTES: '60' });

    expect(result.summary).toMatchObject({
      status: 'done',
      bytesFreed: freedBytes(before, await blobSizes(host.reg)),
    });
    expect(result.summary?.bytesFreed).toBeGreaterThanOrEqual(4096);
  });
});

describe('collect while an image is pushed', () => {
  let host: HostFixture;
  let pushed: PushedImage | undefined;

  beforeAll(async () => {
    host = await startHostFixture({
      docker: {
        beforeGarbageCollect: async () => {
          pushed = await pushImage(host.reg, 'app', 'during', { layerSizes: [6000] });
        },
      },
    });
    await pushImage(host.reg, 'app', 'keep');
    const gone = await pushImage(host.reg, 'app', 'gone', { layerSizes: [4096] });
    await deleteManifest(host.reg, 'app', gone.digest);
  });

  afterAll(async () => {
    await host?.close();
  });

  it('counts as freed only blobs that existed before it: the pushed image does not lower the figure', async () => {
    const before = await blobSizes(host.reg);

    const result = await host.run({ RJ_ACTION: 'collect' });

    const after = await blobSizes(host.reg);
    expect(result.summary).toMatchObject({
      status: 'done',
      bytesFreed: freedBytes(before, after),
      bytesBefore: total(before),
      bytesAfter: total(after),
    });
    expect(result.summary?.bytesFreed).toBeGreaterThan(4096);
    expect(result.summary?.bytesFreed).toBeGreaterThan(total(before) - total(after));
    expect(await headManifest(host.reg, 'app', 'during')).toBe(pushed?.digest);
  });
});

describe('collect with a collector that exits 0 without collecting', () => {
  let host: HostFixture | undefined;
  afterEach(async () => {
    await host?.close();
    host = undefined;
  });

  async function setUp(registryVersion?: string) {
    host = await startHostFixture({
      docker: { noopGarbageCollect: true, ...(registryVersion ? { registryVersion } : {}) },
    });
    const gone = await pushImage(host.reg, 'app', 'gone', { layerSizes: [4096] });
    await deleteManifest(host.reg, 'app', gone.digest);
    return host;
  }

  it('fails on 2.x, where its mark summary is missing, naming its last line and the log', async () => {
    const fixture = await setUp();
    const before = await blobSizes(fixture.reg);

    const result = await fixture.run({ RJ_ACTION: 'collect' });

    expect(result.exitCode).toBe(1);
    const log = result.summary?.log as string;
    expect(dirnameOf(log)).toBe(fixture.logDir);
    expect(result.summary).toMatchObject({
      status: 'failed',
      reason:
        'the collector exited 0 without its mark summary (N blobs marked, M blobs and K manifests eligible for deletion): ' +
        `Use "registry [command] --help" for more information about a command.; see the log ${log}`,
      gcExitCode: 0,
      blobsMarked: null,
      bytesFreed: 0,
      restarted: true,
    });
    expect(await blobSizes(fixture.reg)).toEqual(before);
  });

  it('is not failed for the missing summary alone on v3, which prints another format', async () => {
    const fixture = await setUp(V3_VERSION_LINE);

    const result = await fixture.run({ RJ_ACTION: 'collect' });

    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({
      status: 'done',
      version: '3.0.0',
      blobsMarked: null,
      bytesFreed: 0,
    });
  });
});
