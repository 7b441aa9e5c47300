import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostStorage } from '../../lambda/host/inventory.js';
import { LocalRunner } from '../../lambda/host/local-runner.js';
import type { StoredRepository } from '../../lambda/ports.js';
import { FilesystemStorage } from '../../lambda/storage/filesystem.js';
import { deleteManifest, type PushedImage, pushImage, putManifest } from '../support/images.js';
import { setRevisionPushTime, setTagPushTime, storageRoot } from '../support/storage.js';
import { type HostFixture, startHostFixture } from './host-fixture.js';

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

/** A PATH on which `stat` is BusyBox's, as in the registry image, and every other command the host's. */
async function busyboxStatPath(dir: string, path: string | undefined): Promise<string> {
  const bin = join(dir, 'busybox-stat');
  await mkdir(bin, { recursive: true });
  await symlink(
    execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim(),
    join(bin, 'stat'),
  );
  return [bin, path].filter(Boolean).join(delimiter);
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
    const env = { ...host.docker.env, PATH: await busyboxStatPath(host.dir, host.docker.env.PATH) };
    const containerStat = spawnSync('stat', ['--help'], { env, encoding: 'utf8' });

    const listed = await new HostStorage(new LocalRunner({ env }), host.params).list();

    expect(`${containerStat.stdout}${containerStat.stderr}`).toContain('BusyBox');
    expect(comparable(listed)).toEqual(comparable(await new FilesystemStorage(host.reg.root).list()));
    expect(
      listed.get('team/backend/api')?.revisions.find((r) => r.digest === untagged.digest)?.pushedAt,
    ).toBe(revisionTime.toISOString());
  });

  it('reads the storage with a single docker exec and prints compact lines before its summary', async () => {
    const before = (await host.docker.calls()).length;

    const result = await host.run({ RJ_ACTION: 'inventory' });

    expect(result.exitCode).toBe(0);
    expect(result.summary).toMatchObject({
      action: 'inventory',
      status: 'done',
      repositories: 3,
      revisions: 4,
      tags: 4,
      ignored: 0,
    });
    const calls = (await host.docker.calls()).slice(before);
    expect(calls).toHaveLength(1);
    expect(calls[0]?.slice(0, 3)).toEqual(['exec', 'registry', 'sh']);
    const lines = result.stdout.trimEnd().split('\n');
    expect(
      lines
        .slice(0, -1)
        .every((line) => /^(R \S+|V [0-9a-f]{64} \d+\.\d{9}|T \S+ [0-9a-f]{64} \d+\.\d{9})$/.test(line)),
    ).toBe(true);
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
      summary: { action: 'inventory', status: 'done', repositories: 0, revisions: 0, tags: 0 },
    });
    expect((await new HostStorage({ run: async () => run }).list()).size).toBe(0);
  });
});
