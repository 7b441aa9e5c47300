import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plan } from '../../lambda/domain/plan.js';
import { buildPolicy } from '../../lambda/domain/policy.js';
import { HostStorage } from '../../lambda/host/host-storage.js';
import { LocalRunner } from '../../lambda/host/local-runner.js';
import { parseHostOutput } from '../../lambda/host/summary.js';
import type { StorageLister, StoredRepository } from '../../lambda/ports.js';
import { FilesystemStorage } from '../../lambda/storage/filesystem.js';
import { deleteManifest, type PushedImage, pushImage, putManifest } from '../support/images.js';
import { type MixedContent, pushMixedContent } from '../support/mixed-registry.js';
import { contentReads, type RecordedScan, repositoryOf, scanWith } from '../support/scanning.js';
import {
  blobDataPath,
  revisionLinkPath,
  setRevisionPushTime,
  setTagPushTime,
  startUpload,
  storageRoot,
} from '../support/storage.js';
import { type HostFixture, runScript, startHostFixture } from './host-fixture.js';

/** In a stable order. */
function comparable(listing: Map<string, StoredRepository>): [string, StoredRepository][] {
  return [...listing.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, repository]) => [
      name,
      {
        revisions: [...repository.revisions].sort((a, b) => a.digest.localeCompare(b.digest)),
        tags: [...repository.tags].sort((a, b) => a.name.localeCompare(b.name)),
      },
    ]);
}

/**
 * A PATH on which the given commands, or every applet, are BusyBox's, as in the registry image, and every
 * other command the host's.
 */
async function busyboxPath(
  dir: string,
  path: string | undefined,
  applets?: readonly string[],
): Promise<string> {
  const busybox = execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim();
  const bin = join(dir, `busybox-${applets ? applets.join('-') : 'all'}`);
  await mkdir(bin, { recursive: true });
  const names =
    applets ?? execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const name of names) await symlink(busybox, join(bin, name)).catch(() => undefined);
  return [bin, path].filter(Boolean).join(delimiter);
}

/** What a HostStorage makes of the manifests of every revision it lists. */
async function manifestsOf(storage: StorageLister, listing: Map<string, StoredRepository>) {
  const digests = [...new Set([...listing.values()].flatMap((r) => r.revisions.map((v) => v.digest)))].sort();
  return Promise.all(digests.map(async (digest) => [digest, await storage.readManifest?.(digest)] as const));
}

describe('the host script inventory against a real registry', () => {
  let host: HostFixture;
  let api1: PushedImage;
  let api2: PushedImage;
  let untagged: PushedImage;
  let web: PushedImage;
  const revisionTime = new Date('2024-02-03T04:05:06.789Z');
  const tagTime = new Date('2025-06-07T08:09:10Z');

  beforeAll(async () => {
    host = await startHostFixture();
    const { reg } = host;
    api1 = await pushImage(reg, 'team/backend/api', 'v1');
    api2 = await pushImage(reg, 'team/backend/api', 'v2');
    untagged = await pushImage(reg, 'team/backend/api', undefined);
    web = await pushImage(reg, 'web', 'latest');
    await putManifest(reg, 'web', 'stable', web.mediaType, web.manifest);
    const gone = await pushImage(reg, 'emptied', 'old');
    await deleteManifest(reg, 'emptied', gone.digest);
    await setRevisionPushTime(reg, 'team/backend/api', untagged.digest, revisionTime);
    await setTagPushTime(reg, 'web', 'stable', tagTime);
  });

  afterAll(async () => {
    await host?.close();
  });

  it('lists nested repositories, untagged revisions and tags with their digests and push times to the millisecond, as the storage shows them', async () => {
    const storage = new HostStorage(new LocalRunner({ env: host.docker.env }), host.params);

    const listed = await storage.list();

    expect(comparable(listed)).toEqual(comparable(await new FilesystemStorage(host.reg.root).list()));
    expect([...listed.keys()].sort()).toEqual(['emptied', 'team/backend/api', 'web']);
    const api = listed.get('team/backend/api');
    expect(api?.revisions.map((r) => r.digest).sort()).toEqual(
      [api1.digest, api2.digest, untagged.digest].sort(),
    );
    expect(api?.revisions.find((r) => r.digest === untagged.digest)?.pushedAt).toBe(
      revisionTime.toISOString(),
    );
    expect(api?.tags.map((t) => [t.name, t.digest]).sort()).toEqual([
      ['v1', api1.digest],
      ['v2', api2.digest],
    ]);
    expect(listed.get('web')?.tags.find((t) => t.name === 'stable')).toEqual({
      name: 'stable',
      digest: web.digest,
      pushedAt: tagTime.toISOString(),
    });
    expect(listed.get('emptied')).toEqual({ revisions: [], tags: [] });
  });

  it("reads the same push times, to the millisecond, with the registry image's BusyBox stat", async () => {
    const env = { ...host.docker.env, PATH: await busyboxPath(host.dir, host.docker.env.PATH, ['stat']) };
    const containerStat = spawnSync('stat', ['--help'], { env, encoding: 'utf8' });

    const listed = await new HostStorage(new LocalRunner({ env }), host.params).list();

    expect(`${containerStat.stdout}${containerStat.stderr}`).toContain('BusyBox');
    expect(comparable(listed)).toEqual(comparable(await new FilesystemStorage(host.reg.root).list()));
    expect(
      listed.get('team/backend/api')?.revisions.find((r) => r.digest === untagged.digest)?.pushedAt,
    ).toBe(revisionTime.toISOString());
  });

  it('reads the same listing and manifests when the script and every tool it runs are BusyBox', async () => {
    const env = host.env({ PATH: await busyboxPath(host.dir, host.docker.env.PATH) });
    const shell = spawnSync('sh', ['-c', 'tar --help; xargs --help; gzip --help; base64 --help'], {
      env,
      encoding: 'utf8',
    });
    const result = await runScript({ ...env, RJ_ACTION: 'inventory' });
    const parsed = parseHostOutput(result.stdout);
    const fromBusybox = new HostStorage({
      run: async () => ({
        state: 'finished',
        exitCode: result.exitCode ?? 1,
        output: parsed.output,
        ...(parsed.summary ? { summary: parsed.summary } : {}),
      }),
    });
    const filesystem = new FilesystemStorage(host.reg.root);

    const listed = await fromBusybox.list();

    expect(shell.stderr.match(/BusyBox/g)).toHaveLength(4);
    expect(result.stderr).toBe('');
    expect(comparable(listed)).toEqual(comparable(await filesystem.list()));
    const manifests = await manifestsOf(fromBusybox, listed);
    expect(manifests).toEqual(await manifestsOf(filesystem, listed));
    expect(manifests.map(([, manifest]) => manifest?.digest)).toEqual(manifests.map(([digest]) => digest));
  });

  it('reads the storage with two docker execs, side by side, and prints compact lines before its summary', async () => {
    const before = (await host.docker.calls()).length;

    const result = await host.run({ RJ_ACTION: 'inventory' });

    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({
      action: 'inventory',
      status: 'done',
      repositories: 3,
      revisions: 4,
      tags: 4,
      manifests: 4,
      ignored: 0,
    });
    const calls = (await host.docker.calls()).slice(before);
    expect(calls.map((call) => call.slice(0, 4))).toEqual([
      ['exec', 'registry', 'sh', '-c'],
      ['exec', 'registry', 'sh', '-c'],
    ]);
    const lines = result.stdout.trimEnd().split('\n');
    expect(
      lines
        .slice(0, -1)
        .every((line) =>
          /^(R \S+|V [0-9a-f]{64} \d+\.\d{9}|T \S+ [0-9a-f]{64} \d+\.\d{9}|M [A-Za-z0-9+/]+=*)$/.test(line),
        ),
    ).toBe(true);
    expect(lines.filter((line) => line.startsWith('M '))).toHaveLength(
      result.summary?.archiveLines as number,
    );
    expect(lines).toContain(`V ${untagged.digest.slice(7)} ${revisionTime.getTime() / 1000}000000`);
    expect(lines.indexOf('R web')).toBeLessThan(
      lines.indexOf(`T stable ${web.digest.slice(7)} ${tagTime.getTime() / 1000}.000000000`),
    );
  });

  it('skips and counts entries whose names the registry would reject', async () => {
    const repositories = join(storageRoot(host.reg), 'repositories');
    const hex = 'a'.repeat(64);
    const link = async (path: string) => {
      await mkdir(join(repositories, path), { recursive: true });
      await writeFile(join(repositories, path, 'link'), `sha256:${hex}`);
    };
    await link(`Bad_Name/_manifests/revisions/sha256/${hex}`);
    await link('web/_manifests/revisions/sha256/not-a-digest');
    await link('web/_manifests/tags/-dash/current');
    await mkdir(join(repositories, 'web/_manifests/tags/broken/current'), { recursive: true });
    await writeFile(join(repositories, 'web/_manifests/tags/broken/current/link'), 'sha256:short');
    const skipped: string[] = [];

    const run = await new LocalRunner({ env: host.docker.env }).run('inventory', host.params);
    const listed = await new HostStorage(
      { run: async () => run },
      {},
      { onInvalid: (m) => skipped.push(m) },
    ).list();

    expect(run.summary).toMatchObject({ status: 'done', ignored: 5 });
    expect(skipped).toEqual([]);
    expect([...listed.keys()].sort()).toEqual(['emptied', 'team/backend/api', 'web']);
    expect(
      listed
        .get('web')
        ?.tags.map((t) => t.name)
        .sort(),
    ).toEqual(['latest', 'stable']);
    expect(listed.get('web')?.revisions.map((r) => r.digest)).toEqual([web.digest]);
  });
});

describe('the host script inventory of tags named like the folders it skips', () => {
  let host: HostFixture;
  let image: PushedImage;

  beforeAll(async () => {
    host = await startHostFixture();
    image = await pushImage(host.reg, 'app', 'v1');
    for (const tag of ['_layers', '_uploads']) {
      await putManifest(host.reg, 'app', tag, image.mediaType, image.manifest);
    }
    await startUpload(host.reg, 'app');
  });

  afterAll(async () => {
    await host?.close();
  });

  it('lists tags called _layers and _uploads, and nothing from the layer links or the upload in progress', async () => {
    const run = await new LocalRunner({ env: host.docker.env }).run('inventory', host.params);
    const listed = await new HostStorage({ run: async () => run }).list();

    expect(run.summary).toMatchObject({ status: 'done', repositories: 1, revisions: 1, tags: 3, ignored: 0 });
    expect(
      listed
        .get('app')
        ?.tags.map((tag) => [tag.name, tag.digest])
        .sort(),
    ).toEqual([
      ['_layers', image.digest],
      ['_uploads', image.digest],
      ['v1', image.digest],
    ]);
    expect(comparable(listed)).toEqual(comparable(await new FilesystemStorage(host.reg.root).list()));
  });
});

describe('the host script inventory of an empty registry', () => {
  let host: HostFixture;

  beforeAll(async () => {
    host = await startHostFixture();
  });

  afterAll(async () => {
    await host?.close();
  });

  it('is a valid empty inventory', async () => {
    const run = await new LocalRunner({ env: host.docker.env }).run('inventory', host.params);

    expect(run).toMatchObject({
      state: 'finished',
      exitCode: 0,
      output: '',
      summary: {
        action: 'inventory',
        status: 'done',
        repositories: 0,
        revisions: 0,
        tags: 0,
        manifests: 0,
        archiveLines: 0,
      },
    });
    expect((await new HostStorage({ run: async () => run }).list()).size).toBe(0);
  });
});

describe('a scan through the host script', () => {
  let host: HostFixture;
  let content: MixedContent;
  let throughHost: RecordedScan;
  let fromRoot: RecordedScan;
  const now = new Date();

  beforeAll(async () => {
    host = await startHostFixture();
    content = await pushMixedContent(host.reg);
    throughHost = await scanWith(
      host.reg,
      new HostStorage(new LocalRunner({ env: host.docker.env }), host.params),
      now,
    );
    fromRoot = await scanWith(host.reg, new FilesystemStorage(host.reg.root), now);
  });

  afterAll(async () => {
    await host?.close();
  });

  it('finds the same inventory as a scan of the storage root, and plans the same', () => {
    const policy = buildPolicy(undefined, { keepLast: 1, untaggedGrace: '1h' });

    expect(throughHost.scanned.inventory).toEqual({
      ...fromRoot.scanned.inventory,
      storedBlobs: undefined,
    });
    expect(throughHost.scanned.inventory.repositories.every((r) => r.error === undefined)).toBe(true);
    expect(plan(throughHost.scanned.inventory, policy, now).repositories).toEqual(
      plan(fromRoot.scanned.inventory, policy, now).repositories,
    );
    const index = repositoryOf(throughHost.scanned.inventory, 'multi/base')?.manifests.find(
      (m) => m.digest === content.skopeoIndex.digest,
    );
    expect(index?.children.map((child) => child.digest)).toEqual(content.skopeoIndex.children);
  });

  it('reads no manifest and no config through the API, and ranks images tied on push time by build time from storage', () => {
    expect(content.tied.length).toBeGreaterThan(1);
    expect(contentReads(throughHost.requests)).toEqual([]);
    const created = (scan: RecordedScan, digest: string) =>
      repositoryOf(scan.scanned.inventory, 'ci/job')?.manifests.find((m) => m.digest === digest)?.created;
    const fromHost = content.tied.map((image) => created(throughHost, image.digest));
    expect(fromHost.every((at) => at !== undefined)).toBe(true);
    expect(new Set(fromHost).size).toBe(content.tied.length);
    expect(fromHost).toEqual(content.tied.map((image) => created(fromRoot, image.digest)));
  });

  it('carries the config of every image, hand-formatted manifests too, with GNU tools and with BusyBox', async () => {
    const busybox = host.env({ PATH: await busyboxPath(host.dir, host.docker.env.PATH) });
    for (const env of [host.docker.env, busybox]) {
      const storage = new HostStorage(new LocalRunner({ env }), host.params);
      const listed = await storage.list();
      const configs = (await manifestsOf(storage, listed)).flatMap(([, manifest]) =>
        manifest?.config ? [manifest.config.digest] : [],
      );
      const pretty = (await storage.readManifest(content.pretty as `sha256:${string}`))?.config?.digest;
      expect(pretty && configs).toContain(pretty);
      for (const digest of configs) {
        const body = await storage.readBlob(digest, 4 * 1024 * 1024);
        expect(body && `sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(digest);
      }
    }
  });

  it('fails the repository whose manifest blob is not what its digest names, and scans the others', async () => {
    const damaged = await pushImage(host.reg, 'damaged/app', 'v1');
    await writeFile(blobDataPath(host.reg, damaged.digest), '{"schemaVersion":2,"layers":[]}');

    const { scanned } = await scanWith(
      host.reg,
      new HostStorage(new LocalRunner({ env: host.docker.env }), host.params),
      new Date(),
    );

    expect(repositoryOf(scanned.inventory, 'damaged/app')?.error).toBe(
      `manifest ${damaged.digest} in storage does not match its digest: the content hashes to sha256:${createHash('sha256').update('{"schemaVersion":2,"layers":[]}').digest('hex')}`,
    );
    expect(scanned.inventory.repositories.filter((r) => r.error !== undefined)).toHaveLength(1);
  });

  it('fails a repository whose revision names a blob too large for a manifest, as a scan of the root does', async () => {
    const image = await pushImage(host.reg, 'huge/app', 'v1', { layerSizes: [5 * 1024 * 1024] });
    const layer = image.layers[0]?.digest as string;
    const link = revisionLinkPath(host.reg, 'huge/app', layer);
    await mkdir(dirname(link), { recursive: true });
    await writeFile(link, layer);
    const storage = new HostStorage(new LocalRunner({ env: host.docker.env }), host.params);

    const [viaHost, viaRoot] = await Promise.all([
      scanWith(host.reg, storage, new Date()),
      scanWith(host.reg, new FilesystemStorage(host.reg.root), new Date()),
    ]);

    for (const { scanned } of [viaHost, viaRoot]) {
      expect(repositoryOf(scanned.inventory, 'huge/app')?.error).toBe(
        `manifest ${layer} in storage is ${5 * 1024 * 1024} bytes, more than the ${4 * 1024 * 1024} it may have`,
      );
    }
  });
});
