import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ManifestFormatError,
  MEDIA_TYPES,
  parseConfigCreated,
  parseManifest,
} from '../../lambda/domain/manifest.js';
import { isDigest } from '../../lambda/domain/names.js';
import {
  buildPolicy,
  describeRule,
  PolicyError,
  type RuleInput,
  ruleFor,
  UNTAGGED_GRACE,
} from '../../lambda/domain/policy.js';

const RUNS = { numRuns: 300 };
const encode = (text: string) => new TextEncoder().encode(text);
const json = (value: unknown) => encode(JSON.stringify(value));

/** What the parser threw, or undefined when it returned. */
function thrown(parse: () => unknown): unknown {
  try {
    parse();
    return undefined;
  } catch (error) {
    return error;
  }
}

const digest = fc.stringMatching(/^sha256:[a-f0-9]{64}$/);
/** A value of the right type most of the time, of any type sometimes. */
const mostly = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary, weight: 9 }, { arbitrary: fc.anything(), weight: 1 });
const mediaType = fc.oneof(fc.constantFrom(...Object.values(MEDIA_TYPES)), fc.string({ maxLength: 300 }));

const descriptor = (valid: boolean) => {
  const field = valid ? <T>(arbitrary: fc.Arbitrary<T>) => arbitrary : mostly;
  return fc.record(
    {
      mediaType: field(mediaType),
      digest: field(valid ? digest : fc.oneof(digest, fc.string())),
      size: field(valid ? fc.nat() : fc.oneof(fc.nat(), fc.integer(), fc.double())),
      platform: field(
        fc.record(
          {
            os: field(fc.string({ maxLength: 70 })),
            architecture: field(fc.string({ maxLength: 70 })),
            variant: field(fc.string({ maxLength: 70 })),
          },
          { requiredKeys: valid ? ['os', 'architecture'] : [] },
        ),
      ),
      annotations: fc.dictionary(fc.string(), fc.string()),
    },
    { requiredKeys: valid ? ['digest', 'size'] : [] },
  );
};

/**
 * Manifest-shaped JSON: valid image manifests and indexes, and the same with fields missing, of the wrong
 * type or out of range.
 */
const manifestLike = (valid: boolean) => {
  const field = valid ? <T>(arbitrary: fc.Arbitrary<T>) => arbitrary : mostly;
  return fc.record(
    {
      schemaVersion: field(valid ? fc.constant(2) : fc.constantFrom(2, 2, 1, 3)),
      mediaType: field(mediaType),
      artifactType: field(fc.string({ maxLength: 300 })),
      config: field(descriptor(valid)),
      layers: field(fc.array(descriptor(valid), { maxLength: 4 })),
      manifests: field(fc.array(descriptor(valid), { maxLength: 4 })),
      subject: field(descriptor(valid)),
      annotations: fc.anything(),
    },
    { requiredKeys: valid ? ['schemaVersion'] : [] },
  );
};

const bodies = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.string().map(encode),
  fc.jsonValue().map(json),
  { arbitrary: manifestLike(true).map(json), weight: 3 },
  { arbitrary: manifestLike(false).map(json), weight: 3 },
);

describe('the manifest parser, on any input', () => {
  it('returns a manifest true to the body, or throws a ManifestFormatError, never anything else', () => {
    fc.assert(
      fc.property(
        fc.oneof({ arbitrary: digest, weight: 9 }, { arbitrary: fc.string(), weight: 1 }),
        fc.oneof(fc.constantFrom('', ...Object.values(MEDIA_TYPES)), fc.string()),
        bodies,
        (name, mediaType, body) => {
          let manifest: ReturnType<typeof parseManifest> | undefined;
          const error = thrown(() => {
            manifest = parseManifest(name, mediaType, body);
          });

          if (error !== undefined) {
            expect(error).toBeInstanceOf(ManifestFormatError);
            expect((error as Error).message).not.toBe('');
            return;
          }
          expect(manifest).toMatchObject({ digest: name, size: body.byteLength });
          const references = [
            ...(manifest?.config ? [manifest.config] : []),
            ...(manifest?.layers ?? []),
            ...(manifest?.children ?? []),
          ];
          for (const reference of references) {
            expect(isDigest(reference.digest)).toBe(true);
            expect(Number.isInteger(reference.size) && reference.size >= 0).toBe(true);
          }
          if (manifest?.subject !== undefined) expect(isDigest(manifest.subject)).toBe(true);
          if (manifest?.kind === 'index') expect([manifest.layers, manifest.config]).toEqual([[], undefined]);
          else expect(manifest?.children).toEqual([]);
        },
      ),
      RUNS,
    );
  });

  it("reads a config's build time as an ISO date, or none, and never throws", () => {
    const configs = fc.oneof(
      bodies,
      fc
        .record({
          created: mostly(
            fc.oneof(
              fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
              fc.string(),
            ),
          ),
        })
        .map(json),
    );
    fc.assert(
      fc.property(configs, (body) => {
        let created: string | undefined;
        expect(
          thrown(() => {
            created = parseConfigCreated(body);
          }),
        ).toBeUndefined();
        if (created !== undefined) expect(new Date(created).toISOString()).toBe(created);
      }),
      RUNS,
    );
  });
});

const ruleFields = (valid: boolean) => {
  const field = valid ? <T>(arbitrary: fc.Arbitrary<T>) => arbitrary : mostly;
  return {
    keepLast: field(
      valid ? fc.nat(20) : fc.oneof(fc.integer({ min: -3, max: 20 }), fc.double(), fc.string()),
    ),
    keepDays: field(
      valid ? fc.double({ min: 0, max: 90, noNaN: true }) : fc.oneof(fc.integer(), fc.double()),
    ),
    keepTags: field(
      fc.array(
        valid
          ? fc.constantFrom('^latest$', '^v[0-9]+', 'stable', '.*')
          : fc.oneof(fc.constantFrom('^latest$', '(', '[a-'), fc.string()),
        { maxLength: 3 },
      ),
    ),
    untaggedGrace: field(
      valid
        ? fc.constantFrom('0', '90m', '2h', '1.5d', '7d', '2w')
        : fc.oneof(fc.constantFrom('0', '7d', '3 days', '-1h', '1e3d'), fc.string()),
    ),
    groups: field(
      fc.array(
        fc.record(
          {
            tags: valid
              ? fc.constantFrom('^rc-', 'pr', '')
              : fc.oneof(fc.constantFrom('(', '^rc-'), fc.anything()),
            keepLast: field(valid ? fc.nat(5) : fc.oneof(fc.integer({ min: -2, max: 5 }), fc.string())),
            keepDays: field(valid ? fc.constantFrom(2, '36h', '1h30m') : fc.string()),
          },
          { requiredKeys: valid ? ['tags', 'keepLast'] : [] },
        ),
        { maxLength: 2 },
      ),
    ),
    untaggedOnly: field(valid ? fc.boolean() : fc.anything()),
    protect: field(fc.boolean()),
  };
};
const ruleLike = (valid: boolean) => fc.record(ruleFields(valid), { requiredKeys: [] });
const policyLike = (valid: boolean) => {
  const field = valid ? <T>(arbitrary: fc.Arbitrary<T>) => arbitrary : mostly;
  return fc.record(
    {
      $schema: field(fc.string()),
      defaults: field(ruleLike(valid)),
      rules: field(
        fc.array(
          fc.record(
            {
              repositories: field(
                fc.array(
                  valid
                    ? fc.constantFrom('web/*', '**', 'base', 'team/**', '!(x)', '[ab]*')
                    : fc.oneof(fc.constantFrom('web/*', '[', '!(x', ''), fc.string()),
                  { minLength: valid ? 1 : 0, maxLength: 3 },
                ),
              ),
              ...ruleFields(valid),
            },
            { requiredKeys: valid ? ['repositories'] : [] },
          ),
          { maxLength: 3 },
        ),
      ),
      ...(valid ? {} : { extra: fc.anything() }),
    },
    { requiredKeys: [] },
  );
};
const repositoryName = fc.stringMatching(
  /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*){0,2}$/,
);

describe('the policy parser, on any input', () => {
  it('returns a policy every repository gets a rule from, or throws a PolicyError naming where', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          { arbitrary: policyLike(true), weight: 3 },
          { arbitrary: policyLike(false), weight: 3 },
          fc.anything(),
          fc.constant(undefined),
        ),
        fc.oneof(
          { arbitrary: ruleLike(true), weight: 3 },
          { arbitrary: ruleLike(false), weight: 2 },
          fc.anything(),
        ),
        fc.array(repositoryName, { maxLength: 3 }),
        (file, flags, repositories) => {
          let policy: ReturnType<typeof buildPolicy> | undefined;
          const error = thrown(() => {
            policy = buildPolicy(file, flags as RuleInput);
          });

          if (error !== undefined) {
            expect(error).toBeInstanceOf(PolicyError);
            const problems = (error as PolicyError).problems;
            expect(problems.length).toBeGreaterThan(0);
            for (const problem of problems)
              expect(problem).toMatch(/^(option \S|policy file: \S|no retention rule: )/);
            return;
          }
          for (const name of repositories) {
            const rule = ruleFor(policy as NonNullable<typeof policy>, name);
            expect(describeRule(rule)).toMatch(/^(defaults|rules\[\d+\]): /);
            for (const pattern of [...rule.keepTags, ...rule.groups.map((group) => group.tags)])
              expect(typeof pattern.test('latest')).toBe('boolean');
            expect(Number.isFinite(rule.untaggedGraceMs) && rule.untaggedGraceMs >= 0).toBe(true);
          }
        },
      ),
      RUNS,
    );
  });

  it('reads a duration as milliseconds, or refuses it, and never throws', () => {
    const untaggedGrace = UNTAGGED_GRACE;
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom('0', '90m', '1h30m', '7d', '2w', ' 3d '), fc.string()), (text) => {
        let reading: ReturnType<typeof untaggedGrace.read> | undefined;
        expect(
          thrown(() => {
            reading = untaggedGrace.read(text);
          }),
        ).toBeUndefined();
        if (reading?.ok) expect(Number.isFinite(reading.value) && reading.value >= 0).toBe(true);
        else expect(reading?.problem).toMatch(/^expected /);
      }),
      RUNS,
    );
  });
});
