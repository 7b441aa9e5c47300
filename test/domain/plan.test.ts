import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../lambda/domain/inventory.js';
import { type Plan, plan, type RepositoryPlan, revisionsPushedSince } from '../../lambda/domain/plan.js';
import { buildPolicy, type RuleInput } from '../../lambda/domain/policy.js';
import { daysAgo, digestOf, hoursAgo, image, index, inventory, NOW, repository, tag } from './builders.js';

const policy = (rule: RuleInput, file?: unknown) => buildPolicy(file, rule);
const only = (result: Plan): RepositoryPlan => {
  const [first] = result.repositories;
  if (!first) throw new Error('plan has no repository');
  return first;
};
const tagDecision = (repo: RepositoryPlan, name: string) => repo.tags.find((t) => t.tag === name);
const manifestDecision = (repo: RepositoryPlan, digest: string) =>
  repo.manifests.find((m) => m.digest === digest);
const deletedDigests = (repo: RepositoryPlan) =>
  repo.deletions.flatMap((unit) => unit.steps.map((step) => step.digest));

describe('plan: retention of tagged images', () => {
  it('keeps the N most recent distinct images, counting digests not tag names', () => {
    // Prepare: four images, the newest carrying two tags
    const images = [0, 1, 2, 3].map((n) => image(`app-${n}`, { pushedAt: daysAgo(10 - n) }));
    const [oldest, older, newer, newest] = images as [
      ReturnType<typeof image>,
      ...ReturnType<typeof image>[],
    ];
    const repo = repository(
      'web/app',
      [
        tag('v0', oldest),
        tag('v1', older as never),
        tag('v2', newer as never),
        tag('v3', newest as never),
        tag('latest', newest as never),
      ],
      images,
    );

    // Act
    const result = only(plan(inventory(repo), policy({ keepLast: 2 }), NOW));

    // Assess: v3 and latest are one image, so the two most recent images are v3/latest and v2
    expect(tagDecision(result, 'latest')).toMatchObject({
      decision: 'keep',
      reason: 'among 2 most recent (#1)',
    });
    expect(tagDecision(result, 'v3')).toMatchObject({ decision: 'keep' });
    expect(tagDecision(result, 'v2')).toMatchObject({ decision: 'keep', reason: 'among 2 most recent (#2)' });
    expect(tagDecision(result, 'v1')).toMatchObject({
      decision: 'delete',
      reason: 'stale: pushed 9d ago, not among 2 most recent',
    });
    expect(tagDecision(result, 'v0')?.decision).toBe('delete');
    expect(new Set(deletedDigests(result))).toEqual(new Set([oldest.digest, older?.digest]));
  });

  it('keeps a tag when any rule holds: keep-tag regex, count, or age', () => {
    const old = image('old', { pushedAt: daysAgo(100) });
    const recent = image('recent', { pushedAt: daysAgo(3) });
    const stale = image('stale', { pushedAt: daysAgo(50) });
    const newest = image('newest', { pushedAt: daysAgo(1) });
    const repo = repository(
      'app',
      [tag('stable', old), tag('r', recent), tag('s', stale), tag('n', newest)],
      [old, recent, stale, newest],
    );

    const result = only(
      plan(inventory(repo), policy({ keepLast: 1, keepDays: 7, keepTags: ['^stable$'] }), NOW),
    );

    expect(tagDecision(result, 'stable')).toMatchObject({
      decision: 'keep',
      reason: 'matches keep-tag /^stable$/',
    });
    expect(tagDecision(result, 'n')).toMatchObject({ decision: 'keep', reason: 'among 1 most recent (#1)' });
    expect(tagDecision(result, 'r')).toMatchObject({ decision: 'keep', reason: 'pushed 3d ago, within 7d' });
    expect(tagDecision(result, 's')?.decision).toBe('delete');
    expect(deletedDigests(result)).toEqual([stale.digest]);
  });

  it('plans a policy file pattern that backtracks without end in JavaScript against a long tag', () => {
    // Prepare: one tag the pattern matches, one a push of 61 characters that JavaScript's RegExp cannot answer
    const hostile = `${'a'.repeat(60)}b`;
    const matching = image('matching', { pushedAt: daysAgo(50) });
    const long = image('long', { pushedAt: daysAgo(40) });
    const repo = repository('app', [tag('aaaa', matching), tag(hostile, long)], [matching, long]);
    const file = { rules: [{ repositories: ['app'], keepLast: 0, keepTags: ['^(a+)+$'] }] };

    // Act
    const result = only(plan(inventory(repo), buildPolicy(file, { keepLast: 10 }), NOW));

    // Assess
    expect(tagDecision(result, 'aaaa')).toMatchObject({
      decision: 'keep',
      reason: 'matches keep-tag /^(a+)+$/',
    });
    expect(tagDecision(result, hostile)?.decision).toBe('delete');
    expect(deletedDigests(result)).toEqual([long.digest]);
  });

  it('keeps a stale tag that shares its digest with a kept tag, and says why', () => {
    const shared = image('shared', { pushedAt: daysAgo(90) });
    const repo = repository('app', [tag('latest', shared), tag('build-17', shared)], [shared]);

    const result = only(plan(inventory(repo), policy({ keepLast: 0, keepTags: ['^latest$'] }), NOW));

    expect(tagDecision(result, 'build-17')).toMatchObject({
      decision: 'keep',
      reason: 'digest shared with kept tag latest',
    });
    expect(result.deletions).toEqual([]);
  });

  it('uses the config created time without storage, and flags an epoch-0 build time instead of deleting by it', () => {
    const reproducible = image('ko', { created: '1970-01-01T00:00:00Z' });
    const dated = image('dated', { created: daysAgo(40) });
    const repo = repository(
      'ko/app',
      [tag('a', reproducible), tag('b', dated)],
      [reproducible, dated],
      false,
    );

    const result = only(plan(inventory(repo), policy({ keepDays: 30 }), NOW));

    expect(tagDecision(result, 'a')).toMatchObject({
      decision: 'keep',
      reason: 'no plausible push or build time',
    });
    expect(manifestDecision(result, reproducible.digest)?.warnings).toEqual([
      'implausible build time 1970-01-01T00:00:00Z',
    ]);
    expect(tagDecision(result, 'b')).toMatchObject({ decision: 'delete', reason: 'stale: created 40d ago' });
    expect(manifestDecision(result, dated.digest)?.time).toEqual({ at: daysAgo(40), source: 'created' });
  });

  it('falls back to the build time when the push time is in the future', () => {
    const skewed = image('skewed', { pushedAt: '2099-01-01T00:00:00Z', created: daysAgo(60) });
    const repo = repository('app', [tag('x', skewed)], [skewed]);

    const result = only(plan(inventory(repo), policy({ keepDays: 30 }), NOW));

    expect(manifestDecision(result, skewed.digest)).toMatchObject({
      decision: 'delete',
      time: { source: 'created', at: daysAgo(60) },
      warnings: ['implausible push time 2099-01-01T00:00:00Z'],
    });
  });

  it('keeps everything in a protected repository, a signature whose subject is gone too', () => {
    const old = image('old', { pushedAt: daysAgo(400) });
    const untagged = image('untagged', { pushedAt: daysAgo(400) });
    const orphan = image('signature', { pushedAt: daysAgo(400) });
    const orphanTag = `sha256-${digestOf('gone').slice(7)}.sig`;
    const repo = repository('prod/db', [tag('v1', old), tag(orphanTag, orphan)], [old, untagged, orphan]);
    const file = { rules: [{ repositories: ['prod/**'], protect: true }] };

    const result = only(plan(inventory(repo), policy({ keepLast: 0 }, file), NOW));

    expect(result.deletions).toEqual([]);
    expect(tagDecision(result, 'v1')?.reason).toBe('repository protected by rules[0]');
    expect(tagDecision(result, orphanTag)).toMatchObject({
      decision: 'keep',
      reason: 'repository protected by rules[0]',
    });
  });

  it('applies the first matching per-repository rule over the defaults', () => {
    const images = [0, 1, 2].map((n) => image(`i${n}`, { pushedAt: daysAgo(5 - n) }));
    const tags = images.map((m, n) => tag(`v${n}`, m));
    const file = {
      rules: [
        { repositories: ['web/*'], keepLast: 1 },
        { repositories: ['**'], keepLast: 3 },
      ],
    };

    const result = plan(
      inventory(repository('web/a', tags, images), repository('api/b', tags, images)),
      policy({ keepLast: 2 }, file),
      NOW,
    );

    expect(
      result.repositories.map((r) => [r.name, r.rule, r.tags.filter((t) => t.decision === 'keep').length]),
    ).toEqual([
      ['web/a', 'rules[0]: keep last 1, untagged grace 1d', 1],
      ['api/b', 'rules[1]: keep last 3, untagged grace 1d', 3],
    ]);
  });
});

describe('plan: tag groups, each ranked on its own', () => {
  const pushed = (name: string, days: number) => image(name, { pushedAt: daysAgo(days) });
  const reasons = (repo: RepositoryPlan) =>
    Object.fromEntries(repo.tags.map((t) => [t.tag, `${t.decision}: ${t.reason}`]));

  it("ranks a group's images among themselves, and the images no group takes under the rule's own count", () => {
    // Prepare: releases, then a flurry of newer release candidates and pull-request builds
    const manifests = {
      'v1.0': pushed('v1.0', 30),
      'v1.1': pushed('v1.1', 20),
      'v1.2': pushed('v1.2', 10),
      'rc-1': pushed('rc-1', 9),
      'rc-2': pushed('rc-2', 8),
      'rc-3': pushed('rc-3', 7),
      'pr-7': pushed('pr-7', 6),
      'pr-8': pushed('pr-8', 1),
      'pr-9': pushed('pr-9', 0.5),
    };
    const repo = repository(
      'app/web',
      Object.entries(manifests).map(([name, m]) => tag(name, m)),
      Object.values(manifests),
    );
    const file = {
      rules: [
        {
          repositories: ['app/*'],
          keepLast: 2,
          groups: [
            { tags: '^rc-', keepLast: 2 },
            { tags: '^pr-', keepLast: 1, keepDays: 2 },
          ],
        },
      ],
    };

    // Act
    const result = only(plan(inventory(repo), policy({ keepLast: 10 }, file), NOW));

    // Assess: six newer candidates and builds push no release out of the rule's two
    expect(reasons(result)).toEqual({
      'v1.2': 'keep: among 2 most recent (#1)',
      'v1.1': 'keep: among 2 most recent (#2)',
      'v1.0': 'delete: stale: pushed 30d ago, not among 2 most recent',
      'rc-3': 'keep: among 2 most recent of /^rc-/ (#1)',
      'rc-2': 'keep: among 2 most recent of /^rc-/ (#2)',
      'rc-1': 'delete: stale: pushed 9d ago, not among 2 most recent of /^rc-/',
      'pr-9': 'keep: among 1 most recent of /^pr-/ (#1)',
      'pr-8': 'keep: pushed 1d ago, within 2d for /^pr-/',
      'pr-7': 'delete: stale: pushed 6d ago, not among 1 most recent of /^pr-/',
    });
    expect(result.rule).toBe(
      'rules[0]: keep last 2, group /^rc-/ (keep last 2), group /^pr-/ (keep last 1, keep 2d), untagged grace 1d',
    );
    expect(new Set(deletedDigests(result))).toEqual(
      new Set([manifests['v1.0'].digest, manifests['rc-1'].digest, manifests['pr-7'].digest]),
    );
  });

  it('puts an image whose tag matches two groups in both, and keeps it when either keeps it', () => {
    // Prepare: rc-9-hotfix is the newest hotfix and the oldest candidate
    const hotfixCandidate = pushed('rc-9-hotfix', 11);
    const hotfix = pushed('2.0-hotfix', 12);
    const candidates = [pushed('rc-10', 5), pushed('rc-11', 4)];
    const repo = repository(
      'app',
      [
        tag('rc-9-hotfix', hotfixCandidate),
        tag('2.0-hotfix', hotfix),
        tag('rc-10', candidates[0] as Manifest),
        tag('rc-11', candidates[1] as Manifest),
      ],
      [hotfixCandidate, hotfix, ...candidates],
    );
    const hotfixes = { tags: '-hotfix$', keepLast: 1 };
    const planned = (candidatesKept: number) =>
      only(
        plan(
          inventory(repo),
          policy({ keepLast: 0, groups: [{ tags: '^rc-', keepLast: candidatesKept }, hotfixes] }),
          NOW,
        ),
      );

    // Act
    const three = planned(3);
    const two = planned(2);

    // Assess: it holds the one hotfix place either way; the candidates' ranking keeps it first, then the hotfixes'
    expect(reasons(three)).toEqual({
      'rc-9-hotfix': 'keep: among 3 most recent of /^rc-/ (#3)',
      '2.0-hotfix': 'delete: stale: pushed 12d ago, not among 1 most recent of /-hotfix$/',
      'rc-10': 'keep: among 3 most recent of /^rc-/ (#2)',
      'rc-11': 'keep: among 3 most recent of /^rc-/ (#1)',
    });
    expect(reasons(two)['rc-9-hotfix']).toBe('keep: among 1 most recent of /-hotfix$/ (#1)');
    expect(deletedDigests(three)).toEqual([hotfix.digest]);
    expect(deletedDigests(two)).toEqual([hotfix.digest]);
  });

  it("keeps a release candidate promoted to a release by the release's own ranking, and by keep-tag", () => {
    // Prepare: rc-1 became v1.0 (one digest, two tags); rc-2 matches a keep-tag
    const promoted = pushed('promoted', 40);
    const pinned = pushed('pinned', 35);
    const newer = [pushed('rc-3', 3), pushed('rc-4', 2)];
    const repo = repository(
      'app',
      [
        tag('rc-1', promoted),
        tag('v1.0', promoted),
        tag('rc-2', pinned),
        tag('rc-3', newer[0] as Manifest),
        tag('rc-4', newer[1] as Manifest),
      ],
      [promoted, pinned, ...newer],
    );

    // Act
    const result = only(
      plan(
        inventory(repo),
        policy({ keepLast: 1, keepTags: ['^rc-2$'], groups: [{ tags: '^rc-', keepLast: 2 }] }),
        NOW,
      ),
    );

    // Assess
    expect(reasons(result)).toEqual({
      'rc-1': 'keep: digest shared with kept tag v1.0',
      'v1.0': 'keep: among 1 most recent (#1)',
      'rc-2': 'keep: matches keep-tag /^rc-2$/',
      'rc-3': 'keep: among 2 most recent of /^rc-/ (#2)',
      'rc-4': 'keep: among 2 most recent of /^rc-/ (#1)',
    });
    expect(result.deletions).toEqual([]);
  });

  it("deletes a group's stale index with its children, and keeps the newer one's", () => {
    const children = [pushed('old-amd64', 20), pushed('old-arm64', 20)];
    const old = index('old', children, { pushedAt: daysAgo(20) });
    const newChild = pushed('new-amd64', 1);
    const newer = index('new', [newChild], { pushedAt: daysAgo(1) });
    const repo = repository(
      'multi',
      [tag('rc-1', old), tag('rc-2', newer)],
      [old, newer, ...children, newChild],
    );

    const result = only(
      plan(inventory(repo), policy({ keepLast: 5, groups: [{ tags: '^rc-', keepLast: 1 }] }), NOW),
    );

    expect(reasons(result)).toEqual({
      'rc-1': 'delete: stale: pushed 20d ago, not among 1 most recent of /^rc-/',
      'rc-2': 'keep: among 1 most recent of /^rc-/ (#1)',
    });
    expect(manifestDecision(result, newChild.digest)).toMatchObject({
      decision: 'keep',
      reason: 'child of kept index rc-2',
    });
    expect(new Set(deletedDigests(result))).toEqual(new Set([old.digest, ...children.map((c) => c.digest)]));
  });

  it('says every ranking a deleted tag fell out of', () => {
    const stale = pushed('rc-1-hotfix', 9);
    const newer = [pushed('rc-2', 2), pushed('3.0-hotfix', 1)];
    const repo = repository(
      'app',
      [tag('rc-1-hotfix', stale), tag('rc-2', newer[0] as Manifest), tag('3.0-hotfix', newer[1] as Manifest)],
      [stale, ...newer],
    );
    const groups = [
      { tags: '^rc-', keepLast: 1 },
      { tags: '-hotfix$', keepLast: 1, keepDays: 7 },
    ];

    const result = only(plan(inventory(repo), policy({ keepLast: 5, groups }), NOW));

    expect(tagDecision(result, 'rc-1-hotfix')).toMatchObject({
      decision: 'delete',
      reason:
        'stale: pushed 9d ago, not among 1 most recent of /^rc-/, not among 1 most recent of /-hotfix$/',
    });
    expect(deletedDigests(result)).toEqual([stale.digest]);
  });
});

describe('plan: untagged only', () => {
  it('deletes only untagged manifests nothing kept needs, past the grace period, and keeps every tag', () => {
    // Prepare: an old tagged image with an untagged SBOM, a tagged and an untagged index with their children, a
    // signature whose subject is gone, a re-pushed tag's old revision, and a push still in its grace period
    const ancient = image('ancient', { pushedAt: daysAgo(400) });
    const sbom = image('sbom', { pushedAt: daysAgo(400), subject: ancient.digest });
    const keptChildren = [
      image('k-amd64', { pushedAt: daysAgo(90) }),
      image('k-arm64', { pushedAt: daysAgo(90) }),
    ];
    const tagged = index('tagged', keptChildren, { pushedAt: daysAgo(90) });
    const goneChildren = [
      image('g-amd64', { pushedAt: daysAgo(30) }),
      image('g-arm64', { pushedAt: daysAgo(30) }),
    ];
    const untaggedIndex = index('untagged', goneChildren, { pushedAt: daysAgo(30) });
    const orphan = image('orphan', { pushedAt: daysAgo(50) });
    const orphanTag = `sha256-${digestOf('gone').slice(7)}.sig`;
    const previous = image('previous', { pushedAt: daysAgo(9) });
    const previousSignature = image('previous-sig', { pushedAt: daysAgo(9), subject: previous.digest });
    const young = image('young', { pushedAt: hoursAgo(2) });
    const repo = repository(
      'app',
      [tag('1.0', ancient), tag('2.0', tagged), tag(orphanTag, orphan)],
      [
        ancient,
        sbom,
        tagged,
        ...keptChildren,
        untaggedIndex,
        ...goneChildren,
        orphan,
        previous,
        previousSignature,
        young,
      ],
    );

    // Act
    const result = only(plan(inventory(repo), policy({ untaggedOnly: true }), NOW));

    // Assess
    expect(result.rule).toBe('defaults: untagged only, untagged grace 1d');
    expect(result.tags.map((t) => [t.tag, t.decision, t.reason])).toEqual([
      ['1.0', 'keep', 'untagged-only rule'],
      ['2.0', 'keep', 'untagged-only rule'],
      [orphanTag, 'keep', 'untagged-only rule'],
    ]);
    expect(manifestDecision(result, sbom.digest)).toMatchObject({
      decision: 'keep',
      reason: 'referrer of kept image 1.0',
    });
    expect(manifestDecision(result, keptChildren[1]?.digest ?? '')).toMatchObject({
      decision: 'keep',
      reason: 'child of kept index 2.0',
    });
    expect(manifestDecision(result, young.digest)).toMatchObject({
      decision: 'keep',
      reason: 'pushed 2h ago, within 1d grace',
    });
    expect(manifestDecision(result, goneChildren[0]?.digest ?? '')?.reason).toBe(
      `child of deleted index ${untaggedIndex.digest.slice(0, 19)}`,
    );
    expect(manifestDecision(result, previousSignature.digest)?.reason).toBe(
      `referrer of deleted image ${previous.digest.slice(0, 19)}`,
    );
    expect(new Set(deletedDigests(result))).toEqual(
      new Set([
        untaggedIndex.digest,
        ...goneChildren.map((c) => c.digest),
        previous.digest,
        previousSignature.digest,
      ]),
    );
  });

  it('holds for every rule when given as a flag, and a protected repository stays whole', () => {
    const old = image('old', { pushedAt: daysAgo(90) });
    const untagged = image('untagged', { pushedAt: daysAgo(90) });
    const tags = [tag('v1', old)];
    const file = {
      defaults: { keepLast: 1 },
      rules: [
        { repositories: ['ci/**'], keepLast: 0, untaggedOnly: false },
        { repositories: ['prod/*'], protect: true },
      ],
    };

    const result = plan(
      inventory(repository('ci/build', tags, [old, untagged]), repository('prod/db', tags, [old, untagged])),
      policy({ untaggedOnly: true }, file),
      NOW,
    );

    const [ci, prod] = result.repositories as [RepositoryPlan, RepositoryPlan];
    expect(ci.rule).toBe('rules[0]: untagged only, untagged grace 1d');
    expect(tagDecision(ci, 'v1')).toMatchObject({ decision: 'keep', reason: 'untagged-only rule' });
    expect(deletedDigests(ci)).toEqual([untagged.digest]);
    expect(prod.rule).toBe('rules[1]: protected');
    expect(prod.deletions).toEqual([]);
  });
});

describe('plan: images pushed in the same second', () => {
  const sameSecond = '2026-05-27T08:30:00.000Z';

  it('ranks them by build time, and the reasons at the cut say so', () => {
    // Prepare: a CI job pushed four tags in one second; their builds are days apart
    const built = { a: 20, b: 10, c: 30, d: 15 };
    const images = Object.entries(built).map(([name, days]) =>
      image(name, { pushedAt: sameSecond, created: daysAgo(days) }),
    );
    const repo = repository(
      'web/app',
      images.map((m, n) => tag(Object.keys(built)[n] ?? '', m)),
      images,
    );

    // Act
    const result = only(plan(inventory(repo), policy({ keepLast: 2 }), NOW));

    // Assess: b and d are the newest builds
    expect(result.tags.map((t) => [t.tag, t.decision, t.reason])).toEqual([
      [
        'a',
        'delete',
        'stale: pushed 5d ago, not among 2 most recent (pushed in the same second as d, older by build time)',
      ],
      ['b', 'keep', 'among 2 most recent (#1; pushed in the same second as a, newer by build time)'],
      [
        'c',
        'delete',
        'stale: pushed 5d ago, not among 2 most recent (pushed in the same second as d, older by build time)',
      ],
      ['d', 'keep', 'among 2 most recent (#2; pushed in the same second as a, newer by build time)'],
    ]);
  });

  it('ranks them by digest when their build times are equal or unknown, and names a missing build time', () => {
    const [first, second] = ['x', 'y']
      .map((name) => image(name, { pushedAt: sameSecond, created: daysAgo(9) }))
      .sort((m, n) => (m.digest < n.digest ? -1 : 1)) as [Manifest, Manifest];
    const unknown = image('unknown', { pushedAt: daysAgo(1) });
    const known = image('known', { pushedAt: daysAgo(1), created: daysAgo(3) });
    const repo = (named: Record<string, Manifest>) =>
      repository(
        'app',
        Object.entries(named).map(([name, m]) => tag(name, m)),
        Object.values(named),
      );

    const byDigest = only(plan(inventory(repo({ second, first })), policy({ keepLast: 1 }), NOW));
    const byPresence = only(plan(inventory(repo({ unknown, known })), policy({ keepLast: 1 }), NOW));

    expect(tagDecision(byDigest, 'first')).toMatchObject({
      decision: 'keep',
      reason: 'among 1 most recent (#1; pushed in the same second as second, ranked by digest)',
    });
    expect(tagDecision(byDigest, 'second')?.decision).toBe('delete');
    expect(tagDecision(byPresence, 'known')).toMatchObject({
      decision: 'keep',
      reason: 'among 1 most recent (#1; pushed in the same second as unknown, which has no build time)',
    });
    expect(tagDecision(byPresence, 'unknown')).toMatchObject({
      decision: 'delete',
      reason:
        'stale: pushed 1d ago, not among 1 most recent (pushed in the same second as known, no build time)',
    });
  });

  it('says nothing of a tie that the cut does not split', () => {
    const tied = ['p', 'q'].map((name) => image(name, { pushedAt: sameSecond, created: daysAgo(8) }));
    const older = image('older', { pushedAt: daysAgo(20) });
    const repo = repository(
      'app',
      [tag('p', tied[0] as never), tag('q', tied[1] as never), tag('older', older)],
      [...tied, older],
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 2 }), NOW));

    expect(result.tags.map((t) => t.reason)).toEqual([
      expect.stringMatching(/^among 2 most recent \(#[12]\)$/),
      expect.stringMatching(/^among 2 most recent \(#[12]\)$/),
      'stale: pushed 20d ago, not among 2 most recent',
    ]);
  });
});

describe('plan: indexes, referrers and untagged manifests', () => {
  it('keeps the children of a kept index and deletes a stale index with its own children', () => {
    const keptChildren = [
      image('new-amd64', { pushedAt: daysAgo(1) }),
      image('new-arm64', { pushedAt: daysAgo(1) }),
    ];
    const staleChildren = [
      image('old-amd64', { pushedAt: daysAgo(20) }),
      image('old-arm64', { pushedAt: daysAgo(20) }),
    ];
    const kept = index('new', keptChildren, { pushedAt: daysAgo(1) });
    const stale = index('old', staleChildren, { pushedAt: daysAgo(20) });
    const repo = repository(
      'multi',
      [tag('2.0', kept), tag('1.0', stale)],
      [kept, stale, ...keptChildren, ...staleChildren],
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(manifestDecision(result, keptChildren[0]?.digest ?? '')).toMatchObject({
      decision: 'keep',
      role: 'child',
      reason: 'child of kept index 2.0',
    });
    expect(manifestDecision(result, staleChildren[1]?.digest ?? '')).toMatchObject({
      decision: 'delete',
      reason: 'child of deleted index 1.0',
    });
    // One unit: the children go first, the tagged index last.
    expect(result.deletions).toHaveLength(1);
    expect(result.deletions[0]?.steps.map((s) => s.digest)).toEqual([
      staleChildren[0]?.digest,
      staleChildren[1]?.digest,
      stale.digest,
    ]);
    expect(result.deletions[0]?.steps.at(-1)?.tags).toEqual(['1.0']);
  });

  it('keeps a child shared by a kept and a deleted index', () => {
    const shared = image('shared', { pushedAt: daysAgo(20) });
    const oldOnly = image('old-only', { pushedAt: daysAgo(20) });
    const kept = index('new', [shared], { pushedAt: daysAgo(1) });
    const stale = index('old', [shared, oldOnly], { pushedAt: daysAgo(20) });
    const repo = repository('multi', [tag('new', kept), tag('old', stale)], [kept, stale, shared, oldOnly]);

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(manifestDecision(result, shared.digest)?.decision).toBe('keep');
    expect(new Set(deletedDigests(result))).toEqual(new Set([stale.digest, oldOnly.digest]));
  });

  it('gives the same reasons whatever order the inventory lists tags and manifests in', () => {
    const shared = image('shared');
    const first = index('first', [shared], { pushedAt: daysAgo(1) });
    const second = index('second', [shared], { pushedAt: daysAgo(2) });
    const tags = [tag('stable', first), tag('latest', first), tag('edge', second)];
    const manifests = [first, second, shared];
    const planned = (t: typeof tags, m: typeof manifests) =>
      only(plan(inventory(repository('multi', t, m)), policy({ keepLast: 2 }), NOW));
    const reasons = (result: RepositoryPlan) =>
      Object.fromEntries(result.manifests.map((m) => [m.digest, m.reason]));

    const forward = planned(tags, manifests);
    const backward = planned([...tags].reverse(), [...manifests].reverse());

    expect(reasons(backward)).toEqual(reasons(forward));
    expect(manifestDecision(forward, first.digest)?.reason).toBe('tag latest: among 2 most recent (#1)');
  });

  it('ranks an index by its newest child when it has no time of its own', () => {
    const children = [image('c1', { created: daysAgo(50) }), image('c2', { created: daysAgo(2) })];
    const multi = index('m', children);
    const single = image('single', { created: daysAgo(10) });
    const repo = repository(
      'app',
      [tag('multi', multi), tag('single', single)],
      [multi, single, ...children],
      false,
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(tagDecision(result, 'multi')?.decision).toBe('keep');
    expect(manifestDecision(result, multi.digest)?.time).toEqual({ at: daysAgo(2), source: 'created' });
    expect(tagDecision(result, 'single')?.decision).toBe('delete');
  });

  it('lets cosign signature tags follow their subject and never count toward N', () => {
    const kept = image('kept', { pushedAt: daysAgo(1) });
    const stale = image('stale', { pushedAt: daysAgo(30) });
    const sigKept = image('sig-kept', {
      pushedAt: daysAgo(1),
      configType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    });
    const attStale = image('att-stale', {
      pushedAt: daysAgo(30),
      configType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
    });
    const orphan = image('orphan-sig', { pushedAt: daysAgo(30) });
    const gone = digestOf('gone');
    const cosignTag = (digest: string, suffix: string) => `sha256-${digest.slice(7)}.${suffix}`;
    const repo = repository(
      'signed',
      [
        tag('v2', kept),
        tag('v1', stale),
        tag(cosignTag(kept.digest, 'sig'), sigKept),
        tag(cosignTag(stale.digest, 'att'), attStale),
        tag(cosignTag(gone, 'sig'), orphan),
      ],
      [kept, stale, sigKept, attStale, orphan],
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(tagDecision(result, cosignTag(kept.digest, 'sig'))).toMatchObject({
      decision: 'keep',
      reason: 'signature of kept image v2',
    });
    expect(tagDecision(result, cosignTag(stale.digest, 'att'))).toMatchObject({
      decision: 'delete',
      reason: 'attestation of deleted image v1',
    });
    expect(tagDecision(result, cosignTag(gone, 'sig'))?.reason).toMatch(
      /^orphan signature: subject sha256:[0-9a-f]{12} is gone$/,
    );
    // The attestation is deleted before its subject, in the same unit.
    const unit = result.deletions.find((u) => u.root === stale.digest);
    expect(unit?.steps.map((s) => s.digest)).toEqual([attStale.digest, stale.digest]);
    expect(deletedDigests(result)).toContain(orphan.digest);
  });

  it('treats a manifest with a subject field as a referrer, tagged or not', () => {
    const subject = image('subject', { pushedAt: daysAgo(1) });
    const sbom = image('sbom', {
      pushedAt: daysAgo(40),
      subject: subject.digest,
      configType: 'application/vnd.oci.empty.v1+json',
    });
    const fallback = index('fallback', [sbom], { pushedAt: daysAgo(40) });
    const repo = repository(
      'app',
      [tag('v1', subject), tag(`sha256-${subject.digest.slice(7)}`, fallback)],
      [subject, sbom, fallback],
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(manifestDecision(result, sbom.digest)).toMatchObject({
      role: 'referrer',
      decision: 'keep',
      reason: 'referrer of kept image v1',
    });
    expect(manifestDecision(result, fallback.digest)).toMatchObject({ role: 'referrer', decision: 'keep' });
    expect(result.deletions).toEqual([]);
  });

  it('deletes untagged manifests past the grace period and keeps younger ones', () => {
    const current = image('current', { pushedAt: daysAgo(0) });
    const old = image('old', { pushedAt: daysAgo(9) });
    const young = image('young', { pushedAt: hoursAgo(2) });
    const repo = repository('app', [tag('latest', current)], [current, old, young]);

    const result = only(plan(inventory(repo), policy({ keepLast: 5, untaggedGrace: '24h' }), NOW));

    expect(manifestDecision(result, old.digest)).toMatchObject({
      decision: 'delete',
      reason: 'untagged for 9d',
    });
    expect(manifestDecision(result, young.digest)).toMatchObject({
      decision: 'keep',
      reason: 'pushed 2h ago, within 1d grace',
    });
    expect(result.deletions).toEqual([{ root: old.digest, steps: [{ digest: old.digest, tags: [] }] }]);
  });

  it('keeps the children of an untagged index still within the grace period (a multi-arch push in flight)', () => {
    const children = [image('a', { pushedAt: daysAgo(3) }), image('b', { pushedAt: daysAgo(3) })];
    const pushing = index('pushing', children, { pushedAt: hoursAgo(1) });
    const repo = repository('app', [], [pushing, ...children]);

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(result.deletions).toEqual([]);
    expect(manifestDecision(result, children[0]?.digest ?? '')?.reason).toBe(
      `child of kept index ${pushing.digest.slice(0, 19)}`,
    );
  });

  it('never deletes an untagged manifest whose push time is unknown', () => {
    const current = image('current', { created: daysAgo(0) });
    const subjectOnly = image('subject-only', {});
    const sig = image('sig', { subject: subjectOnly.digest });
    const repo = repository(
      'app',
      [tag('latest', current), tag(`sha256-${subjectOnly.digest.slice(7)}.sig`, sig)],
      [current, subjectOnly, sig],
      false,
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 1 }), NOW));

    expect(manifestDecision(result, subjectOnly.digest)).toMatchObject({
      decision: 'keep',
      reason: 'untagged, push time unknown',
    });
    expect(manifestDecision(result, sig.digest)?.decision).toBe('keep');
  });

  it('leaves a repository that failed to scan alone', () => {
    const m = image('m', { pushedAt: daysAgo(99) });
    const failed = { ...repository('broken', [tag('v1', m)], []), error: 'HTTP 500' };

    const result = only(plan(inventory(failed), policy({ keepLast: 0 }), NOW));

    expect(result).toMatchObject({ error: 'HTTP 500', deletions: [] });
    expect(tagDecision(result, 'v1')).toMatchObject({
      decision: 'keep',
      reason: 'repository could not be scanned',
    });
  });
});

describe('plan: tags follow their digest', () => {
  it('keeps per-platform tags on the children of a kept index, and says why', () => {
    const amd = image('amd', { pushedAt: daysAgo(5) });
    const arm = image('arm', { pushedAt: daysAgo(5) });
    const multi = index('multi', [amd, arm], { pushedAt: daysAgo(5) });
    const repo = repository(
      'base',
      [tag('3.1', multi), tag('3.1-amd64', amd), tag('3.1-arm64', arm)],
      [multi, amd, arm],
    );

    const result = only(plan(inventory(repo), policy({ keepLast: 0, keepTags: ['^3\\.1$'] }), NOW));

    expect(tagDecision(result, '3.1-amd64')).toMatchObject({
      decision: 'keep',
      reason: 'child of kept index 3.1',
    });
    expect(tagDecision(result, '3.1-arm64')?.decision).toBe('keep');
    expect(result.deletions).toEqual([]);
    expect(result.tags.every((t) => t.decision === 'keep')).toBe(true);
  });
});

describe('revisionsPushedSince', () => {
  it('counts the revisions in storage the plan does not keep: new ones and deleted ones pushed again', () => {
    // Prepare: app:old goes, app:new stays; since the plan, app:again and other:x were pushed and old came back
    const old = image('old', { pushedAt: daysAgo(30) });
    const current = image('new', { pushedAt: daysAgo(1) });
    const planned = plan(
      inventory(repository('app', [tag('old', old), tag('new', current)], [old, current])),
      policy({ keepLast: 1 }),
      NOW,
    );
    const revisions = (...manifests: ReturnType<typeof image>[]) => ({
      revisions: manifests.map((m) => ({ digest: m.digest })),
    });

    // Act
    const untouched = revisionsPushedSince(planned, new Map([['app', revisions(current)]]));
    const pushed = revisionsPushedSince(
      planned,
      new Map([
        ['app', revisions(current, old, image('again'))],
        ['other', revisions(image('x'))],
      ]),
    );

    // Assess
    expect(deletedDigests(only(planned))).toEqual([old.digest]);
    expect(untouched).toBe(0);
    expect(pushed).toBe(3);
  });
});
