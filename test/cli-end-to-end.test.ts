import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Plan } from '../lambda/domain/plan.js';
import { parsePlan, runCli } from './cli-runner.js';
import {
  cosignTag,
  deleteManifest,
  headManifest,
  type PushedImage,
  pushImage,
  pushSignature,
  putManifest,
  randomGzipBlob,
} from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull, skopeoPushMultiArch } from './support/skopeo.js';
import { backdate, blobSizes, freedBytes, manifestLinks, pushStaleAndCurrent } from './support/storage.js';

const DAY = 86_400_000;
const ago = (days: number) => new Date(Date.now() - days * DAY);

const tagsOf = (plan: Plan, repository: string, decision: 'keep' | 'delete') =>
  plan.repositories
    .find((r) => r.name === repository)
    ?.tags.filter((t) => t.decision === decision)
    .map((t) => t.tag)
    .sort();

describe('plan and clean against a real registry with storage visible', () => {
  let reg: TestRegistry;
  const history: PushedImage[] = [];
  let v1: PushedImage;
  let v2: PushedImage;
  let sharedWithOther: PushedImage;
  let oldMulti: { digest: string; children: string[] };
  let newMulti: { digest: string; children: string[] };
  let fresh: PushedImage;
  let policyArgs: string[];
  let orphaned: number;

  beforeAll(async () => {
    reg = await startRegistry();
    const base = randomGzipBlob(4096);
    // A tag re-pushed six times: five untagged revisions left behind.
    for (let n = 0; n < 6; n += 1) {
      const image = await pushImage(reg, 'web/app', 'latest', { layers: [base, randomGzipBlob(2048 + n)] });
      await backdate(reg, 'web/app', image.digest, 10 - n, 'latest');
      history.push(image);
    }
    v1 = await pushImage(reg, 'web/app', 'v1', { layerSizes: [3000] });
    // `stable` is a second tag on v1's digest.
    await putManifest(reg, 'web/app', 'stable', v1.mediaType, v1.manifest);
    await backdate(reg, 'web/app', v1.digest, 40, 'v1');
    // v2 shares a layer with an image in another repository that stays.
    const sharedLayer = randomGzipBlob(5000);
    v2 = await pushImage(reg, 'web/app', 'v2', { layers: [sharedLayer, randomGzipBlob(1500)] });
    await backdate(reg, 'web/app', v2.digest, 20, 'v2');
    sharedWithOther = await pushImage(reg, 'other/svc', '1.0', { layers: [sharedLayer] });
    await pushSignature(reg, 'web/app', v2.digest, 'sig');
    await pushSignature(reg, 'web/app', history[5]?.digest ?? '', 'sig');
    // Multi-arch: an old index and its children, then a newer one.
    oldMulti = await skopeoPushMultiArch(reg, 'multi/base', '1.0', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    for (const digest of [oldMulti.digest, ...oldMulti.children])
      await backdate(reg, 'multi/base', digest, 30);
    newMulti = await skopeoPushMultiArch(reg, 'multi/base', '2.0', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    await pushImage(reg, 'team/sub/app', 'main', { layerSizes: [1024] });
    // An empty repository: its only manifest deleted.
    const gone = await pushImage(reg, 'empty/repo', 'x', {});
    await deleteManifest(reg, 'empty/repo', gone.digest);
    orphaned = gone.manifest.byteLength + gone.config.size + gone.layers.reduce((sum, l) => sum + l.size, 0);
    // Pushed a moment ago without a tag: inside the grace period.
    fresh = await pushImage(reg, 'web/app', undefined, { layerSizes: [700] });
    policyArgs = [
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--keep-last',
      '1',
      '--keep-tag',
      '^stable$',
      '--untagged-grace',
      '1h',
    ];
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('plans every decision with its reason, and changes nothing', async () => {
    const before = await blobSizes(reg);

    const plan = parsePlan(await runCli(['plan', ...policyArgs, '--json']));

    expect(await blobSizes(reg)).toEqual(before);
    expect(await headManifest(reg, 'web/app', 'v2')).toBe(v2.digest);
    expect(tagsOf(plan, 'web/app', 'keep')).toEqual(
      ['latest', cosignTag(history[5]?.digest ?? '', 'sig'), 'stable', 'v1'].sort(),
    );
    expect(tagsOf(plan, 'web/app', 'delete')).toEqual([cosignTag(v2.digest, 'sig'), 'v2'].sort());
    expect(tagsOf(plan, 'multi/base', 'delete')).toEqual(['1.0']);
    const app = plan.repositories.find((r) => r.name === 'web/app');
    expect(app?.tags.find((t) => t.tag === 'v1')?.reason).toBe('digest shared with kept tag stable');
    const untagged = app?.manifests.filter((m) => m.role === 'untagged') ?? [];
    expect(
      untagged
        .filter((m) => m.decision === 'delete')
        .map((m) => m.reason)
        .sort(),
    ).toEqual([
      'untagged for 10d',
      'untagged for 6d',
      'untagged for 7d',
      'untagged for 8d',
      'untagged for 9d',
    ]);
    expect(app?.manifests.find((m) => m.digest === fresh.digest)?.reason).toMatch(
      /^pushed \d+s ago, within 1h grace$/,
    );
    const multi = plan.repositories.find((r) => r.name === 'multi/base');
    expect(
      multi?.manifests
        .filter((m) => m.decision === 'delete')
        .map((m) => m.digest)
        .sort(),
    ).toEqual([oldMulti.digest, ...oldMulti.children].sort());
    expect(plan.reclaim.exact).toBe(true);
  });

  it('prints a table for a person, with totals in human units', async () => {
    const result = await runCli(['plan', ...policyArgs], { env: { COLUMNS: '120' } });

    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^web\/app {2}\(defaults: keep last 1, keep tags \/\^stable\$\/, untagged grace 1h\)$/m,
    );
    expect(result.stdout).toMatch(
      /^ {2}v2 +[0-9a-f]{12} +will delete: stale: pushed 20d ago, not among 1 most recent$/m,
    );
    expect(result.stdout).toMatch(
      /^Garbage collection will then free \d+(\.\d+)? KiB \(\d+ bytes in \d+ blobs\)$/m,
    );
    expect(result.stdout).toContain('1 empty repository not shown');
  });

  it('cleans exactly the plan, garbage collection frees exactly the bytes it promised, and every kept tag still pulls', async () => {
    const plan = parsePlan(await runCli(['plan', ...policyArgs, '--json']));
    const before = await blobSizes(reg);

    const clean = await runCli(['clean', ...policyArgs, '--yes', '--json']);
    const gc = await reg.garbageCollect();
    await reg.restart();

    expect(clean.code).toBe(0);
    const { report } = JSON.parse(clean.stdout) as {
      report: { deletions: { deleted: unknown[]; skipped: unknown[]; failed: unknown[] } };
    };
    expect(report.deletions.deleted).toHaveLength(plan.totals.manifestsDeleted);
    expect(report.deletions.skipped).toEqual([]);
    expect(report.deletions.failed).toEqual([]);
    expect(gc.exitCode).toBe(0);
    const freed = freedBytes(before, await blobSizes(reg));
    expect(freed).toBeGreaterThan(0);
    // The plan's figure, plus the blobs the earlier manual delete had already orphaned.
    expect(plan.reclaim.unreferencedBytes).toBe(orphaned);
    expect(freed).toBe(plan.reclaim.bytes + orphaned);
    // What was deleted is gone; what was kept resolves and pulls completely.
    expect(await headManifest(reg, 'web/app', 'v2')).toBeUndefined();
    expect(await headManifest(reg, 'multi/base', '1.0')).toBeUndefined();
    for (const [repository, tag] of [
      ['web/app', 'latest'],
      ['web/app', 'v1'],
      ['web/app', 'stable'],
      ['web/app', cosignTag(history[5]?.digest ?? '', 'sig')],
      ['multi/base', '2.0'],
      ['other/svc', '1.0'],
      ['team/sub/app', 'main'],
    ] as const) {
      expect({ repository, tag, ...(await skopeoPull(reg, repository, tag)) }).toMatchObject({ ok: true });
    }
    expect(await headManifest(reg, 'multi/base', newMulti.children[1] ?? '')).toBe(newMulti.children[1]);
    expect(await headManifest(reg, 'other/svc', sharedWithOther.digest)).toBe(sharedWithOther.digest);
    expect(await headManifest(reg, 'web/app', fresh.digest)).toBe(fresh.digest);
  });

  it('converges: a second clean finds nothing to delete', async () => {
    const again = await runCli(['clean', ...policyArgs, '--yes']);

    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Nothing to delete.');
  });
});

describe('clean refuses to act on a registry that changed since the plan', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  it('skips a digest whose tag moved, and one a new tag now points to, when applying a saved plan', async () => {
    // Prepare
    reg = await startRegistry();
    const old = await pushImage(reg, 'app', 'release', {});
    await backdate(reg, 'app', old.digest, 30, 'release');
    const older = await pushImage(reg, 'app', 'rc', {});
    await backdate(reg, 'app', older.digest, 40, 'rc');
    const current = await pushImage(reg, 'app', 'main', {});
    const args = ['--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1'];
    const planFile = join(tmpdir(), `plan-${process.pid}-${Date.now()}.json`);
    const planned = await runCli(['plan', ...args, '--json']);
    await writeFile(planFile, planned.stdout);
    expect(tagsOf(parsePlan(planned), 'app', 'delete')).toEqual(['rc', 'release']);
    // Meanwhile: `release` is re-pushed (moves to a new digest), and `rollback` now points at the old rc.
    await pushImage(reg, 'app', 'release', {});
    await putManifest(reg, 'app', 'rollback', older.mediaType, older.manifest);

    // Act
    const result = await runCli(['clean', '--registry', reg.url, '--plan', planFile, '--yes', '--json']);

    // Assess
    expect(result.code).toBe(0);
    const {
      report: { deletions },
    } = JSON.parse(result.stdout) as {
      report: { deletions: { deleted: unknown[]; skipped: { digest: string; reason: string }[] } };
    };
    expect(deletions.deleted).toEqual([]);
    expect(deletions.skipped.map((s) => [s.digest, s.reason]).sort()).toEqual(
      [
        [
          old.digest,
          `registry changed since the plan: tag release no longer points to ${old.digest.slice(0, 19)}`,
        ],
        [
          older.digest,
          `registry changed since the plan: tag rollback now points to ${older.digest.slice(0, 19)}`,
        ],
      ].sort(),
    );
    expect(await headManifest(reg, 'app', old.digest)).toBe(old.digest);
    expect(await headManifest(reg, 'app', 'rollback')).toBe(older.digest);
    expect(await headManifest(reg, 'app', 'main')).toBe(current.digest);
  });

  it('rejects a saved plan made for another registry', async () => {
    reg = await startRegistry();
    const a = await pushImage(reg, 'app', 'a', {});
    const planned = await runCli(['plan', '--registry', reg.url, '--keep-last', '0', '--json']);
    const planFile = join(tmpdir(), `plan-other-${process.pid}-${Date.now()}.json`);
    await writeFile(planFile, planned.stdout);

    const result = await runCli(['clean', '--registry', 'http://127.0.0.1:1', '--plan', planFile, '--yes']);

    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `was made for ${reg.url}, not http://127.0.0.1:1; plan again for this registry`,
    );
    expect(await headManifest(reg, 'app', 'a')).toBe(a.digest);
  });

  it('applies a saved plan to the registry it records, and refuses flags it would ignore', async () => {
    reg = await startRegistry();
    const { stale, current } = await pushStaleAndCurrent(reg, 'app');
    const planned = await runCli([
      'plan',
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--keep-last',
      '1',
      '--json',
    ]);
    const planFile = join(tmpdir(), `plan-own-${process.pid}-${Date.now()}.json`);
    await writeFile(planFile, planned.stdout);

    const refused = await runCli([
      'clean',
      '--plan',
      planFile,
      '--keep-last',
      '50',
      '--repo',
      'app',
      '--yes',
    ]);
    const applied = await runCli(['clean', '--plan', planFile, '--yes']);

    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(
      'error: --keep-last: a saved plan already holds its selection and decisions; plan again to change them\n',
    );
    expect(refused.stderr).toContain('error: --repo: a saved plan already holds');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain('Deleted 1 manifest,');
    expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
    expect(await headManifest(reg, 'app', 'new')).toBe(current.digest);
    expect(stale.digest).not.toBe(current.digest);
  });
});

describe('checking that the registry accepts deletes before planning them', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  const DELETE_FIX = 'REGISTRY_STORAGE_DELETE_ENABLED=true';
  /** How often a phrase appears in wrapped output. */
  const occurrences = (text: string, part: string) => text.replace(/\n +/g, ' ').split(part).length - 1;
  const widest = (text: string) => Math.max(...text.split('\n').map((line) => line.length));
  /** Pushes each tag as its own image ten days old; the digest of each, by tag. */
  const pushStale = async <Tag extends string>(repository: string, tags: readonly Tag[]) => {
    const digests = {} as Record<Tag, string>;
    for (const tag of tags) {
      const image = await pushImage(reg, repository, tag, {});
      await backdate(reg, repository, image.digest, 10, tag);
      digests[tag] = image.digest;
    }
    return digests;
  };

  it('plan says up front that clean would stop and how to enable deletes, and exits 0', async () => {
    reg = await startRegistry({ deleteEnabled: false });
    await pushStale('app', ['a', 'b']);
    const args = ['plan', '--registry', reg.url, '--keep-last', '0'];

    const text = await runCli(args);
    const onTerminal = await runCli(args, { terminal: true });
    const quiet = await runCli([...args, '--quiet']);
    const json = await runCli([...args, '--json']);

    expect(text.code).toBe(0);
    expect(text.stderr).toMatch(/^warning: clean would stop before deleting anything/);
    expect(onTerminal).toMatchObject({ code: 0, stderr: '' });
    expect(occurrences(onTerminal.stdout, DELETE_FIX)).toBe(1);
    const lines = text.stdout.split('\n');
    const warning = lines.findIndex((line) => line.startsWith('warning: clean would stop'));
    expect(warning).toBeGreaterThan(lines.findIndex((line) => line.startsWith('  b ')));
    expect(warning).toBeLessThan(lines.findIndex((line) => line.startsWith('1 repository scanned')));
    expect(text.stdout.replace(/\n +/g, ' ')).toContain(
      'warning: clean would stop before deleting anything: deletes are disabled on the registry ' +
        '(DELETE in app answered 405 UNSUPPORTED). Set REGISTRY_STORAGE_DELETE_ENABLED=true ' +
        '(storage.delete.enabled: true in config.yml) and restart the registry.',
    );
    expect(widest(text.stdout)).toBeLessThanOrEqual(80);
    expect(quiet.code).toBe(0);
    expect(quiet.stdout).toMatch(/^warning: clean would stop before deleting anything: deletes are disabled/);
    expect(json.code).toBe(0);
    expect(parsePlan(json).deletes).toEqual({
      status: 'disabled',
      repository: 'app',
      problem: 'deletes are disabled on the registry (DELETE in app answered 405 UNSUPPORTED)',
      fix: expect.stringContaining(DELETE_FIX),
    });
    expect(json.stderr).toMatch(/^warning: clean would stop before deleting anything/);
    expect(occurrences(json.stderr, DELETE_FIX)).toBe(1);
  });

  it('clean stops before deleting anything when deletes are disabled, and says how to fix it once', async () => {
    reg = await startRegistry({ deleteEnabled: false });
    const tags = ['a', 'b', 'c'] as const;
    const pushed = await pushStale('app', tags);
    const before = await manifestLinks(reg);

    const result = await runCli(['clean', '--registry', reg.url, '--keep-last', '0', '--yes', '--verbose']);

    expect(result.code).toBe(1);
    expect(occurrences(result.stdout + result.stderr, DELETE_FIX)).toBe(1);
    expect(result.stderr.replace(/\n +/g, ' ')).toMatch(
      /^error: clean stopped before deleting anything: deletes are disabled on the registry/m,
    );
    expect(result.stdout).not.toMatch(/^(Deleted|STOPPED|FAILED)/m);
    const deletes = result.stderr.split('\n').filter((line) => line.startsWith('http: DELETE '));
    expect(deletes).toEqual([expect.stringContaining(`/v2/app/manifests/sha256:${'0'.repeat(64)} 405 `)]);
    expect(await manifestLinks(reg)).toEqual(before);
    const kept = await Promise.all(
      tags.map(async (tag) => [tag, await headManifest(reg, 'app', tag)] as const),
    );
    expect(Object.fromEntries(kept)).toEqual(pushed);
  });

  it('clean says the registry is read-only, once, and deletes nothing', async () => {
    reg = await startRegistry();
    const { a } = await pushStale('app', ['a']);
    await reg.restart({ readOnly: true });

    const result = await runCli(['clean', '--registry', reg.url, '--keep-last', '0', '--yes']);

    expect(result.code).toBe(1);
    expect(result.stderr.replace(/\n +/g, ' ')).toContain(
      'error: clean stopped before deleting anything: the registry is in read-only maintenance mode ' +
        '(DELETE in app answered 405). Take it out of read-only mode',
    );
    expect(occurrences(result.stdout + result.stderr, 'read-only maintenance mode')).toBe(1);
    expect(await headManifest(reg, 'app', 'a')).toBe(a);
  });

  it('checks again when applying a saved plan: a registry made read-only since is not touched', async () => {
    reg = await startRegistry();
    const { a } = await pushStale('app', ['a']);
    const planned = await runCli(['plan', '--registry', reg.url, '--keep-last', '0', '--json']);
    expect(parsePlan(planned).deletes).toEqual({ status: 'allowed', repository: 'app' });
    const planFile = join(tmpdir(), `plan-readonly-${process.pid}-${Date.now()}.json`);
    await writeFile(planFile, planned.stdout);
    await reg.restart({ readOnly: true });

    const result = await runCli(['clean', '--plan', planFile, '--yes', '--json']);

    expect(result.code).toBe(1);
    expect((JSON.parse(result.stdout) as { plan: Plan }).plan.deletes?.status).toBe('read-only');
    expect(result.stderr).toMatch(
      /^error: clean stopped before deleting anything: the registry is in read-only/,
    );
    expect(await headManifest(reg, 'app', 'a')).toBe(a);
  });

  it('adds nothing to the output when deletes are enabled, and its DELETE removes nothing', async () => {
    reg = await startRegistry();
    const { stale } = await pushStaleAndCurrent(reg, 'app');
    await pushStaleAndCurrent(reg, 'other');
    const links = await manifestLinks(reg);
    const blobs = await blobSizes(reg);
    const args = ['plan', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1'];

    const text = await runCli(args);
    const json = await runCli([...args, '--json']);

    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).not.toMatch(/warning|deletes/i);
    expect(text.stdout).toMatch(/ {2}old +[0-9a-f]{12} +will delete: .*\n\n2 repositories scanned;/);
    expect(parsePlan(json).deletes).toEqual({ status: 'allowed', repository: 'app' });
    expect(json.stderr).toBe('');
    expect(await manifestLinks(reg)).toEqual(links);
    expect(await blobSizes(reg)).toEqual(blobs);
    expect(await headManifest(reg, 'app', 'old')).toBe(stale.digest);
  });

  it('does not check when nothing is to be deleted', async () => {
    reg = await startRegistry({ deleteEnabled: false });
    await pushImage(reg, 'app', 'a', {});

    const result = await runCli(['plan', '--registry', reg.url, '--keep-last', '1', '--json', '--verbose']);

    expect(result.code).toBe(0);
    expect(parsePlan(result).deletes).toBeUndefined();
    expect(result.stderr).not.toMatch(/DELETE|warning/);
  });
});

describe('a selection that matches no repository', () => {
  let reg: TestRegistry;
  let deepApp: string;
  beforeAll(async () => {
    reg = await startRegistry();
    deepApp = (await pushImage(reg, 'web/deep/app', 'v1', {})).digest;
    await pushImage(reg, 'api/svc', 'v1', {});
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('warns, even with --quiet, suggests the glob that was meant, and exits 0', async () => {
    const plan = await runCli(['plan', '--registry', reg.url, '--keep-last', '0', '--repo', 'web/*', '-q']);
    const clean = await runCli([
      'clean',
      '--registry',
      reg.url,
      '--keep-last',
      '0',
      '--repo',
      'web/*',
      '--yes',
    ]);

    for (const result of [plan, clean]) {
      expect(result.code).toBe(0);
      expect(result.stderr.replace(/\n +/g, ' ')).toBe(
        "warning: --repo 'web/*' matches none of the registry's 2 repositories (did you mean 'web/**'? * stays " +
          'within one path segment); nothing to do\n',
      );
    }
    expect(plan.stdout).toMatch(/^0 repositories scanned/);
    expect(await headManifest(reg, 'web/deep/app', 'v1')).toBe(deepApp);
  });

  it('names the closest repositories to a mistyped name', async () => {
    const result = await runCli(['verify', '--registry', reg.url, '--repo', 'apu/svc', '--quiet']);

    expect(result.code).toBe(0);
    expect(result.stderr.replace(/\n +/g, ' ')).toBe(
      "warning: --repo 'apu/svc' matches none of the registry's 2 repositories (closest: api/svc); nothing to verify\n",
    );
  });

  it('says when the exclusions leave nothing', async () => {
    const result = await runCli([
      'plan',
      '--registry',
      reg.url,
      '--keep-last',
      '0',
      '--repo',
      'api/*',
      '--exclude-repo',
      'api/**',
      '--json',
    ]);

    expect(result.code).toBe(0);
    expect(parsePlan(result).repositories).toEqual([]);
    expect(result.stderr.replace(/\n +/g, ' ')).toBe(
      "warning: --exclude-repo 'api/**' excludes the repository --repo 'api/*' selects; nothing to do\n",
    );
  });

  it('says nothing when the selection matches', async () => {
    const result = await runCli(['verify', '--registry', reg.url, '--repo', 'web/**']);

    expect(result).toMatchObject({ code: 0, stderr: '' });
  });
});

describe('plan without the storage root', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  it('times images by their build time, keeps an epoch-0 build with a warning, and calls the figure an upper bound', async () => {
    reg = await startRegistry();
    await pushImage(reg, 'ko/app', 'reproducible', { created: '1970-01-01T00:00:00Z' });
    await pushImage(reg, 'ko/app', 'old', { created: ago(60).toISOString() });
    await pushImage(reg, 'ko/app', 'new', { created: ago(1).toISOString() });

    const result = await runCli(['plan', '--registry', reg.url, '--keep-days', '30']);
    const plan = parsePlan(await runCli(['plan', '--registry', reg.url, '--keep-days', '30', '--json']));

    expect(tagsOf(plan, 'ko/app', 'delete')).toEqual(['old']);
    expect(plan.repositories[0]?.tags.find((t) => t.tag === 'reproducible')?.reason).toBe(
      'no plausible push or build time',
    );
    expect(plan.reclaim.exact).toBe(false);
    expect(result.stdout).toMatch(/warning: [0-9a-f]{12} implausible build time 1970-01-01T00:00:00.000Z/);
    expect(result.stdout).toContain('Garbage collection will then free at most');
    expect(result.stdout).toContain(
      'upper bound: untagged revisions are not visible without the storage root',
    );
  });

  it('scans only the selected repositories and says the figure is then an upper bound', async () => {
    reg = await startRegistry();
    for (const repository of ['web/a', 'web/deep/b', 'api/c']) await pushImage(reg, repository, 'x', {});

    const plan = parsePlan(
      await runCli([
        'plan',
        '--registry',
        reg.url,
        '--keep-last',
        '1',
        '--repo',
        'web/**',
        '--exclude-repo',
        'web/deep/*',
        '--json',
      ]),
    );

    expect(plan.repositories.map((r) => r.name)).toEqual(['web/a']);
    expect(plan.reclaim.caveats).toContain(
      'only some repositories were scanned; blobs they share with the others may stay',
    );
  });
});

describe('authentication', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  for (const auth of ['basic', 'token'] as const) {
    it(`cleans a registry behind ${auth} auth with credentials from the environment`, async () => {
      reg = await startRegistry({ auth });
      await pushStaleAndCurrent(reg, 'private/app');
      const env = {
        REGISTRY_USERNAME: reg.credentials?.username,
        REGISTRY_PASSWORD: reg.credentials?.password,
      };

      const result = await runCli(
        ['clean', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1', '--yes'],
        { env },
      );

      expect(result.code).toBe(0);
      expect(result.stdout).toContain('Deleted 1 manifest,');
      expect(await headManifest(reg, 'private/app', 'old')).toBeUndefined();
      expect(await skopeoPull(reg, 'private/app', 'new')).toEqual({ ok: true });
    });
  }

  it('says which account may not delete where, before clean deletes anything', async () => {
    reg = await startRegistry({ auth: 'token', tokenWithholds: ['repository:private/app:delete'] });
    const { stale } = await pushStaleAndCurrent(reg, 'private/app');
    const env = {
      REGISTRY_USERNAME: reg.credentials?.username,
      REGISTRY_PASSWORD: reg.credentials?.password,
    };
    const args = ['--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1'];

    const plan = await runCli(['plan', ...args, '--quiet'], { env });
    const clean = await runCli(['clean', ...args, '--yes'], { env });

    const refusal =
      'the registry does not let the account "janitor" delete in private/app (DELETE answered 401). Give the ' +
      'account delete permission on the repository (scope repository:private/app:delete), or log in as one ' +
      'that has it.';
    expect(plan.code).toBe(0);
    expect(plan.stdout.replace(/\n +/g, ' ')).toContain(
      `warning: clean would stop before deleting anything: ${refusal}`,
    );
    expect(clean.code).toBe(1);
    expect(clean.stderr.replace(/\n +/g, ' ')).toBe(
      `error: clean stopped before deleting anything: ${refusal}\n`,
    );
    expect(await headManifest(reg, 'private/app', 'old')).toBe(stale.digest);
    for (const output of [plan.stdout, plan.stderr, clean.stdout, clean.stderr])
      expect(output).not.toContain(reg.credentials?.password);
  });

  it('tells a refusal in the middle of a run once on a terminal, and on stderr too when stdout is not one', async () => {
    // The check goes to the first repository that deletes, where the account may; the second refuses.
    reg = await startRegistry({ auth: 'token', tokenWithholds: ['repository:team/b:delete'] });
    await pushStaleAndCurrent(reg, 'team/a');
    const teamB = await pushStaleAndCurrent(reg, 'team/b');
    const env = {
      REGISTRY_USERNAME: reg.credentials?.username,
      REGISTRY_PASSWORD: reg.credentials?.password,
    };
    const args = ['clean', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1', '--yes'];

    const onTerminal = await runCli(args, { env, terminal: true });
    await pushStaleAndCurrent(reg, 'team/a');
    const redirected = await runCli(args, { env });

    const refusal = 'did not grant the account "janitor" repository:team/b:delete (401 insufficient_scope)';
    expect(onTerminal.code).toBe(1);
    expect(onTerminal.stderr).toBe('');
    expect(onTerminal.stdout.replace(/\n +/g, ' ').split(refusal)).toHaveLength(2);
    expect(onTerminal.stdout).toMatch(
      /^FAILED: the registry at .*\n(.*\n)*STOPPED: the registry refused deletes/m,
    );
    expect(redirected.code).toBe(1);
    expect(redirected.stderr).toContain(refusal);
    expect(await headManifest(reg, 'team/b', 'old')).toBe(teamB.stale.digest);
  });

  it("uses the Docker CLI's saved login for the registry's host", async () => {
    reg = await startRegistry({ auth: 'basic' });
    await pushImage(reg, 'private/app', 'x', {});
    const dockerConfig = await mkdtemp(join(tmpdir(), 'docker-config-'));
    const auth = Buffer.from(`${reg.credentials?.username}:${reg.credentials?.password}`).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }));

    const plan = parsePlan(
      await runCli(['plan', '--registry', reg.url, '--keep-last', '1', '--json'], {
        env: { DOCKER_CONFIG: dockerConfig },
      }),
    );

    expect(plan.repositories.map((r) => [r.name, r.tags.map((t) => t.tag)])).toEqual([
      ['private/app', ['x']],
    ]);
  });

  it('fails with a clear message, not a stack trace, on a wrong password', async () => {
    reg = await startRegistry({ auth: 'basic' });
    await pushImage(reg, 'private/app', 'x', {});

    const result = await runCli(
      ['plan', '--registry', reg.url, '--keep-last', '1', '--username', 'janitor', '--password-stdin'],
      {
        input: 'wrong\n',
      },
    );

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error: .*(401|credentials|authenticat)/im);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('confirmation on a terminal', () => {
  let reg: TestRegistry;
  afterEach(async () => {
    await reg?.stop();
  });

  it('deletes only after the person answers yes', async () => {
    reg = await startRegistry();
    const { stale } = await pushStaleAndCurrent(reg, 'app');
    const args = ['clean', '--registry', reg.url, '--storage-root', reg.root, '--keep-last', '1'];

    const declined = await runCli(args, { tty: true, input: 'n\n' });
    expect(declined.code).toBe(0);
    expect(declined.stderr).toContain('Delete 1 manifests');
    expect(declined.stderr).toContain('Nothing deleted.');
    expect(await headManifest(reg, 'app', 'old')).toBe(stale.digest);

    const accepted = await runCli(args, { tty: true, input: 'y\n' });
    expect(accepted.code).toBe(0);
    expect(await headManifest(reg, 'app', 'old')).toBeUndefined();
  });
});
