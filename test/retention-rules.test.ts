import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Plan, RepositoryPlan } from '../lambda/domain/plan.js';
import { parsePlan, runCli } from './cli-runner.js';
import { cosignTag, headManifest, type PushedImage, pushImage, pushSignature } from './support/images.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { skopeoPull, skopeoPushMultiArch } from './support/skopeo.js';
import { backdate, manifestLinks } from './support/storage.js';

const widest = (text: string) => Math.max(...text.split('\n').map((line) => line.length));
const repositoryOf = (plan: Plan, name: string): RepositoryPlan => {
  const found = plan.repositories.find((r) => r.name === name);
  if (!found) throw new Error(`the plan has no repository ${name}`);
  return found;
};
const decisions = (repository: RepositoryPlan) =>
  Object.fromEntries(repository.tags.map((t) => [t.tag, `${t.decision}: ${t.reason}`]));

describe('tag groups, planned and cleaned against a real registry', () => {
  let reg: TestRegistry;
  let policyFile: string;
  const pushed = new Map<string, PushedImage>();
  const TAGS: readonly (readonly [string, number])[] = [
    ['v1.0', 30],
    ['v1.1', 20],
    ['v1.2', 10],
    ['rc-1', 9],
    ['rc-2', 8],
    ['rc-3', 7],
    ['pr-7', 6],
    ['pr-8', 1],
    ['pr-9', 0],
  ];

  beforeAll(async () => {
    reg = await startRegistry();
    for (const [tag, days] of TAGS) {
      const image = await pushImage(reg, 'app/web', tag, { layerSizes: [1500] });
      if (days > 0) await backdate(reg, 'app/web', image.digest, days, tag);
      pushed.set(tag, image);
    }
    const dir = await mkdtemp(join(tmpdir(), 'registry-janitor-policy-'));
    policyFile = join(dir, 'policy.json');
    await writeFile(
      policyFile,
      JSON.stringify({
        defaults: { keepLast: 10 },
        rules: [
          {
            repositories: ['app/*'],
            keepLast: 2,
            groups: [
              { tags: '^rc-', keepLast: 2 },
              { tags: '^pr-', keepLast: 1, keepDays: '36h' },
            ],
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('plans each group on its own, and the releases by the rule, saying which ranking kept what', async () => {
    const args = ['plan', '--registry', reg.url, '--storage-root', reg.root, '--policy', policyFile];

    const plan = parsePlan(await runCli([...args, '--json']));
    const text = await runCli(args);

    expect(decisions(repositoryOf(plan, 'app/web'))).toEqual({
      'v1.0': 'delete: stale: pushed 30d ago, not among 2 most recent',
      'v1.1': 'keep: among 2 most recent (#2)',
      'v1.2': 'keep: among 2 most recent (#1)',
      'rc-1': 'delete: stale: pushed 9d ago, not among 2 most recent of /^rc-/',
      'rc-2': 'keep: among 2 most recent of /^rc-/ (#2)',
      'rc-3': 'keep: among 2 most recent of /^rc-/ (#1)',
      'pr-7': 'delete: stale: pushed 6d ago, not among 1 most recent of /^pr-/',
      'pr-8': 'keep: pushed 1d ago, within 1.5d for /^pr-/',
      'pr-9': 'keep: among 1 most recent of /^pr-/ (#1)',
    });
    expect(text.code).toBe(0);
    expect(text.stdout.replace(/\n +/g, ' ')).toContain(
      'app/web  (rules[0]: keep last 2, group /^rc-/ (keep last 2), group /^pr-/ (keep last 1, keep 1.5d), untagged grace 1d)',
    );
    expect(text.stdout).toMatch(/^ {2}rc-2 +[0-9a-f]{12} +keep: among 2 most recent of \/\^rc-\/ \(#2\)$/m);
    expect(widest(text.stdout)).toBeLessThanOrEqual(80);
  });

  it('cleans exactly the images no ranking keeps, and every kept tag still pulls', async () => {
    const clean = await runCli([
      'clean',
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--policy',
      policyFile,
      '--yes',
    ]);

    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('Deleted 3 manifests,');
    for (const [tag] of TAGS) {
      const gone = ['v1.0', 'rc-1', 'pr-7'].includes(tag);
      if (gone) expect({ tag, digest: await headManifest(reg, 'app/web', tag) }).toEqual({ tag });
      else expect({ tag, ...(await skopeoPull(reg, 'app/web', tag)) }).toEqual({ tag, ok: true });
    }
  });
});

describe('--untagged-only against a real registry', () => {
  let reg: TestRegistry;
  let revisions: PushedImage[];
  let fresh: PushedImage;
  let multi: { digest: string; children: string[] };
  let signatureTag: string;
  const revisionLink = (image: PushedImage) =>
    `svc/_manifests/revisions/sha256/${image.digest.slice('sha256:'.length)}/link`;

  beforeAll(async () => {
    reg = await startRegistry();
    // `latest` pushed three times: two untagged revisions, 10 and 9 days old, then the tagged one.
    revisions = [];
    for (const days of [10, 9, 0]) {
      const image = await pushImage(reg, 'svc', 'latest', { layerSizes: [1200 + days] });
      if (days > 0) await backdate(reg, 'svc', image.digest, days, 'latest');
      revisions.push(image);
    }
    const ancient = await pushImage(reg, 'svc', 'v0.1', { layerSizes: [900] });
    await backdate(reg, 'svc', ancient.digest, 400, 'v0.1');
    signatureTag = cosignTag(ancient.digest, 'sig');
    const signature = await pushSignature(reg, 'svc', ancient.digest, 'sig');
    await backdate(reg, 'svc', signature.digest, 400, signatureTag);
    // An old multi-arch image: its children are untagged, and stay with it.
    multi = await skopeoPushMultiArch(reg, 'svc', '1.0', [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64' },
    ]);
    for (const digest of [multi.digest, ...multi.children]) await backdate(reg, 'svc', digest, 60);
    // Pushed a moment ago without a tag: within the grace period.
    fresh = await pushImage(reg, 'svc', undefined, { layerSizes: [700] });
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('plans to delete only the untagged revisions past the grace period, keeping every tag', async () => {
    const plan = parsePlan(
      await runCli(['plan', '--registry', reg.url, '--storage-root', reg.root, '--untagged-only', '--json']),
    );

    const svc = repositoryOf(plan, 'svc');
    expect(svc.rule).toBe('defaults: untagged only, untagged grace 1d');
    expect(decisions(svc)).toEqual({
      latest: 'keep: untagged-only rule',
      'v0.1': 'keep: untagged-only rule',
      '1.0': 'keep: untagged-only rule',
      [signatureTag]: 'keep: signature of kept image v0.1',
    });
    expect(
      svc.manifests
        .filter((m) => m.decision === 'delete')
        .map((m) => [m.digest, m.reason])
        .sort(),
    ).toEqual(
      [
        [revisions[0]?.digest, 'untagged for 10d'],
        [revisions[1]?.digest, 'untagged for 9d'],
      ].sort(),
    );
    expect(svc.manifests.find((m) => m.digest === multi.children[0])?.reason).toBe('child of kept index 1.0');
    expect(svc.manifests.find((m) => m.digest === fresh.digest)?.reason).toMatch(
      /^pushed \d+s ago, within 1d grace$/,
    );
  });

  it('refuses a count beside it, and warns that without the storage it sees nothing to delete', async () => {
    const both = await runCli([
      'plan',
      '--registry',
      reg.url,
      '--untagged-only',
      '--keep-last',
      '3',
      '--keep-tag',
      '^v',
    ]);
    const blind = await runCli(['plan', '--registry', reg.url, '--untagged-only']);

    expect(both).toMatchObject({ code: 2, stdout: '' });
    expect(both.stderr.split('\n').filter((line) => line.startsWith('error: '))).toEqual([
      'error: --keep-last: does nothing with --untagged-only, which keeps every tagged image: give one of them',
      'error: --keep-tag: does nothing with --untagged-only, which keeps every tagged image: give one of them',
    ]);
    expect(blind.code).toBe(0);
    expect(blind.stderr.replace(/\n +/g, ' ')).toBe(
      'warning: --untagged-only: only untagged manifests are deleted, and the scan sees them only with ' +
        '--storage-root or --storage-from-host; without one, it deletes nothing\n',
    );
    expect(widest(blind.stderr)).toBeLessThanOrEqual(80);
    expect(blind.stdout).toMatch(
      /^1 repository scanned; tags: keep 4, delete 0; manifests: keep 6, delete 0$/m,
    );
  });

  it('cleans only those revisions, and every tag still pulls, its signature and children with it', async () => {
    const before = await manifestLinks(reg);

    const clean = await runCli([
      'clean',
      '--registry',
      reg.url,
      '--storage-root',
      reg.root,
      '--untagged-only',
      '--yes',
    ]);

    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain('Deleted 2 manifests,');
    const after = new Set(await manifestLinks(reg));
    expect(before.filter((link) => !after.has(link)).sort()).toEqual(
      revisions.slice(0, 2).map(revisionLink).sort(),
    );
    for (const tag of ['latest', 'v0.1', '1.0', signatureTag]) {
      expect({ tag, ...(await skopeoPull(reg, 'svc', tag)) }).toEqual({ tag, ok: true });
    }
    expect(await headManifest(reg, 'svc', fresh.digest)).toBe(fresh.digest);
    expect(await headManifest(reg, 'svc', multi.children[1] ?? '')).toBe(multi.children[1]);
  });
});

describe('durations on the command line, in the one syntax', () => {
  let reg: TestRegistry;

  beforeAll(async () => {
    reg = await startRegistry();
    for (const [tag, days] of [
      ['month-old', 31],
      ['weeks-old', 29],
    ] as const) {
      const image = await pushImage(reg, 'app', tag, {});
      await backdate(reg, 'app', image.digest, days, tag);
    }
    const untagged = await pushImage(reg, 'app', undefined, { layerSizes: [600] });
    await backdate(reg, 'app', untagged.digest, 75 / 1440);
  });

  afterAll(async () => {
    await reg?.stop();
  });

  it('reads --keep-days as days, plain or with units, and --untagged-grace and --timeout with compound units', async () => {
    const planned = async (keepDays: string, grace: string) =>
      parsePlan(
        await runCli([
          'plan',
          '--registry',
          reg.url,
          '--storage-root',
          reg.root,
          '--keep-days',
          keepDays,
          '--untagged-grace',
          grace,
          '--timeout',
          '1h30m',
          '--json',
        ]),
      );

    const plans = await Promise.all(
      [
        ['30', '90m'],
        ['30d', '1h30m'],
        ['720h', '5400s'],
        ['4w2d', '1.5h'],
      ].map(([keepDays, grace]) => planned(keepDays ?? '', grace ?? '')),
    );
    const shortGrace = await planned('30', '1h');

    for (const plan of plans) {
      const app = repositoryOf(plan, 'app');
      expect(app.rule).toBe('defaults: keep 30d, untagged grace 1h');
      expect(decisions(app)).toEqual({
        'month-old': 'delete: stale: pushed 31d ago',
        'weeks-old': 'keep: pushed 29d ago, within 30d',
      });
      expect(app.manifests.find((m) => m.role === 'untagged')?.reason).toMatch(
        /^pushed 1h ago, within 1h grace$/,
      );
    }
    expect(repositoryOf(shortGrace, 'app').manifests.find((m) => m.role === 'untagged')).toMatchObject({
      decision: 'delete',
      reason: 'untagged for 1h',
    });
  });
});
