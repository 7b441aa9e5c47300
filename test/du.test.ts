import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Usage } from '../lambda/domain/usage.js';
import { formatBytes } from '../lambda/report/format.js';
import { runCli } from './cli-runner.js';
import { deleteManifest, type PushedImage, pushImage, pushIndex, randomGzipBlob } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull } from './support/skopeo.js';
import { backdate, blobSizes, freedBytes, manifestLinks } from './support/storage.js';

const KiB = 1024;
const BUILT = '2026-01-01T00:00:00.000Z';
const widest = (text: string) => Math.max(...text.split('\n').map((line) => line.length));
const total = (sizes: Map<string, number>) => [...sizes.values()].reduce((sum, size) => sum + size, 0);

describe('du against a real registry, held against what garbage-collect frees', () => {
  let reg: TestRegistry;
  let staleLatest: PushedImage;
  let orphaned: number;
  let args: string[];
  let scratch: string;

  beforeAll(async () => {
    reg = await startRegistry();
    scratch = await mkdtemp(join(tmpdir(), 'janitor-du-'));
    const base = randomGzipBlob(48 * KiB);
    const tool = randomGzipBlob(24 * KiB);
    const shippedLayer = randomGzipBlob(20 * KiB);
    // web/app: v1, v2, and latest pushed twice; the first latest is left untagged. Its `tool` layer is v1's too.
    await pushImage(reg, 'web/app', 'v1', { layers: [base, tool, randomGzipBlob(12 * KiB)] });
    await pushImage(reg, 'web/app', 'v2', { layers: [base, shippedLayer], created: BUILT });
    staleLatest = await pushImage(reg, 'web/app', 'latest', {
      layers: [base, tool, randomGzipBlob(9 * KiB)],
    });
    await backdate(reg, 'web/app', staleLatest.digest, 3, 'latest');
    await pushImage(reg, 'web/app', 'latest', { layers: [base, randomGzipBlob(7 * KiB)] });
    // api/server: its own image on the same base, and the very image web/app:v2 is (manifest, config, layers).
    await pushImage(reg, 'api/server', '1.0', { layers: [base, randomGzipBlob(16 * KiB)] });
    await pushImage(reg, 'api/server', 'shipped', { layers: [base, shippedLayer], created: BUILT });
    // multi/base: a two-platform index whose amd64 child is on the shared base.
    const amd64 = await pushImage(reg, 'multi/base', undefined, {
      layers: [base, randomGzipBlob(10 * KiB)],
      platform: { os: 'linux', architecture: 'amd64' },
      format: 'oci',
    });
    const arm64 = await pushImage(reg, 'multi/base', undefined, {
      layers: [randomGzipBlob(30 * KiB)],
      platform: { os: 'linux', architecture: 'arm64' },
      format: 'oci',
    });
    await pushIndex(reg, 'multi/base', '1.0', [amd64, arm64]);
    // gone/app: its only image deleted without a collection since; its blobs are referenced by no manifest.
    const gone = await pushImage(reg, 'gone/app', 'x', { layers: [randomGzipBlob(5 * KiB)] });
    await deleteManifest(reg, 'gone/app', gone.digest);
    orphaned = gone.manifest.byteLength + gone.config.size + (gone.layers[0]?.size ?? 0);
    args = ['--registry', reg.url, '--storage-root', reg.root];
  });

  afterAll(async () => {
    await reg?.stop();
    await rm(scratch, { recursive: true, force: true });
  });

  const du = async (): Promise<Usage> => {
    const result = await runCli(['du', ...args, '--json']);
    if (result.code !== 0) throw new Error(`du failed (${result.code}): ${result.stderr}`);
    return JSON.parse(result.stdout) as Usage;
  };
  const of = (usage: Usage, name: string) => usage.repositories.find((r) => r.name === name);

  /** Deletes the manifests through the API, runs the registry's own collector, and measures what left the disk. */
  async function collectAfterDeleting(repository: string, digests: readonly string[]): Promise<number> {
    for (const digest of digests) expect(await deleteManifest(reg, repository, digest)).toBe(202);
    const before = await blobSizes(reg);
    const gc = await reg.garbageCollect();
    expect(gc.exitCode).toBe(0);
    await reg.restart();
    return freedBytes(before, await blobSizes(reg));
  }

  /** Every manifest revision of a repository, tagged or not, as storage lists it. */
  const revisions = async (repository: string) =>
    (await manifestLinks(reg))
      .filter((path) => path.startsWith(`${repository}/_manifests/revisions/`))
      .map((path) => `sha256:${path.split('/').at(-2)}`);

  it('shows every repository, the largest exclusive figure first, within 80 columns; JSON with exact bytes; a page with a bar each', async () => {
    const page = join(scratch, 'du.html');
    const text = await runCli(['du', ...args, '--html', page]);
    const usage = await du();

    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(widest(text.stdout)).toBeLessThanOrEqual(80);
    expect(usage.repositories.map((r) => r.name)).toEqual(
      [...usage.repositories].sort((a, b) => b.exclusiveBytes - a.exclusiveBytes).map((r) => r.name),
    );
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(/^ +EXCLUSIVE +TOTAL +SHARED +UNTAGGED +REPOSITORY$/);
    for (const repository of usage.repositories.filter((r) => r.totalBytes > 0)) {
      const cells = [
        repository.exclusiveBytes,
        repository.totalBytes,
        repository.sharedBytes,
        repository.untaggedBytes,
      ].map(formatBytes);
      expect(lines).toContainEqual(
        expect.stringMatching(new RegExp(`^ *${cells.join(' +')} +${repository.name}$`)),
      );
      expect(repository.sharedBytes).toBe(repository.totalBytes - repository.exclusiveBytes);
    }
    expect(of(usage, 'gone/app')).toEqual({
      name: 'gone/app',
      totalBytes: 0,
      exclusiveBytes: 0,
      sharedBytes: 0,
      untaggedBytes: 0,
    });
    expect(text.stdout).toContain('1 empty repository not shown');
    const html = await readFile(page, 'utf8');
    expect([...html.matchAll(/<g class="bar" data-label="([^"]+)">/g)].map((m) => m[1])).toEqual(
      usage.repositories.filter((r) => r.totalBytes > 0).map((r) => r.name),
    );
    expect(usage.registryBytes).toBe(total(await blobSizes(reg)));
    expect(text.stdout.replace(/\n +/g, ' ')).toContain(
      `Registry: ${formatBytes(usage.registryBytes ?? 0)} (${usage.registryBytes} bytes) in storage, ${formatBytes(orphaned)} (${orphaned} bytes) of it referenced by no manifest`,
    );
  });

  it('says what no manifest references, and garbage collection frees exactly that', async () => {
    const usage = await du();

    const freed = await collectAfterDeleting('gone/app', []);

    expect(usage.unreferencedBytes).toBe(orphaned);
    expect(freed).toBe(orphaned);
  });

  it("frees exactly a repository's untagged bytes once its untagged manifests are deleted", async () => {
    const usage = await du();
    expect(usage.unreferencedBytes).toBe(0);

    const freed = await collectAfterDeleting('web/app', [staleLatest.digest]);

    expect(of(usage, 'web/app')?.untaggedBytes).toBeGreaterThan(9 * KiB);
    expect(freed).toBe(of(usage, 'web/app')?.untaggedBytes);
  });

  it.each(['web/app', 'multi/base'])(
    "frees exactly %s's exclusive bytes once the repository is emptied, and the images it shared layers with still pull",
    async (repository) => {
      const usage = await du();
      const figures = of(usage, repository);

      const freed = await collectAfterDeleting(repository, await revisions(repository));

      expect(figures?.sharedBytes).toBeGreaterThanOrEqual(48 * KiB);
      expect(freed).toBe(figures?.exclusiveBytes);
      expect(of(await du(), repository)?.totalBytes).toBe(0);
      for (const tag of ['1.0', 'shipped'])
        expect({ tag, ...(await skopeoPull(reg, 'api/server', tag)) }).toMatchObject({ ok: true });
    },
  );

  it('calls its figures upper bounds when it cannot see every repository or the untagged manifests', async () => {
    const selected = await runCli(['du', ...args, '--repo', 'api/*', '--json']);
    const blind = await runCli(['du', '--registry', reg.url]);

    expect(selected.code).toBe(0);
    expect(JSON.parse(selected.stdout)).toMatchObject({
      unreferencedBytes: null,
      exact: false,
      caveats: ['only some repositories were scanned; blobs they share with the others may stay'],
    });
    expect(blind.code).toBe(0);
    expect(blind.stdout).toContain('Registry: its total in storage shows with --storage-root');
    expect(blind.stdout.replace(/\n +/g, ' ')).toContain(
      'exclusive and untagged bytes are at most: untagged revisions are not visible without the storage root',
    );
  });
});
