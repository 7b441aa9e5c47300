import { parseManifest } from './domain/manifest.js';
import type { Digest } from './domain/names.js';
import { repositoryFilter } from './domain/selection.js';
import { errorMessage } from './error-message.js';
import { createLimit, type Limit } from './limit.js';
import type { Registry } from './ports.js';
import { plural } from './report/format.js';

export interface TagToVerify {
  readonly repository: string;
  readonly tag: string;
}

export interface BrokenTag {
  readonly repository: string;
  readonly tag: string;
  readonly problem: string;
}

export interface Verification {
  readonly tags: number;
  readonly manifests: number;
  readonly blobs: number;
  /** Tags a check found missing or wrong. */
  readonly broken: readonly BrokenTag[];
  /** Tags whose check the deadline cut short: neither found whole nor found broken. */
  readonly unverified: readonly TagToVerify[];
}

const MAX_DEPTH = 4;

const CUT_SHORT = Symbol('cut short by the deadline');
/** What a check found: nothing wrong (undefined), a problem, or that the deadline stopped it first. */
type Finding = string | typeof CUT_SHORT | undefined;

const cancelledByDeadline = (error: unknown): boolean => (error as { code?: unknown })?.code === 'RJ_ABORTED';

/** A problem found outweighs a check that did not finish. */
const firstFinding = (findings: readonly Finding[]): Finding =>
  findings.find((finding) => typeof finding === 'string') ??
  findings.find((finding) => finding === CUT_SHORT);

/**
 * Checks that every given tag still resolves completely: its manifest, every child of an index, and the config
 * and layers of every image answer with the size the manifest promises. Run it after the registry restarted:
 * before that, its blob cache may still answer for blobs the garbage collector removed. A request the deadline
 * cancelled proves nothing either way: its tag is unverified, not broken.
 */
export async function verifyTags(registry: Registry, tags: readonly TagToVerify[]): Promise<Verification> {
  const limit = createLimit(registry.concurrency);
  const manifests = new Map<string, Promise<Finding>>();
  const blobs = new Map<string, Promise<Finding>>();
  const checkBlob = (repository: string, digest: Digest, size: number) => {
    const key = `${repository}@${digest}`;
    let check = blobs.get(key);
    if (!check) {
      check = limit(() => registry.statBlob(repository, digest)).then(
        (found) =>
          found === undefined
            ? `blob ${digest} is missing`
            : found !== size
              ? `blob ${digest} has ${found} bytes, the manifest says ${size}`
              : undefined,
        (error): Finding =>
          cancelledByDeadline(error)
            ? CUT_SHORT
            : `blob ${digest} could not be checked: ${errorMessage(error)}`,
      );
      blobs.set(key, check);
    }
    return check;
  };
  const checkManifest = (repository: string, reference: string, depth: number): Promise<Finding> => {
    const key = `${repository}@${reference}`;
    let check = manifests.get(key);
    if (!check) {
      check = (async () => {
        const fetched = await limit(() => registry.getManifest(repository, reference));
        if (!fetched) return `manifest ${reference} is missing`;
        const manifest = parseManifest(fetched.digest, fetched.mediaType, fetched.body);
        const findings = await Promise.all([
          ...(manifest.config ? [checkBlob(repository, manifest.config.digest, manifest.config.size)] : []),
          ...manifest.layers.map((layer) => checkBlob(repository, layer.digest, layer.size)),
          ...manifest.children.map(async (child) => {
            if (depth >= MAX_DEPTH) return `index nesting deeper than ${MAX_DEPTH}`;
            const finding = await checkManifest(repository, child.digest, depth + 1);
            if (typeof finding !== 'string') return finding;
            return `${finding} (in child ${[child.digest, child.platform].filter(Boolean).join(' ')})`;
          }),
        ]);
        return firstFinding(findings);
      })().catch(
        (error): Finding =>
          cancelledByDeadline(error)
            ? CUT_SHORT
            : `manifest ${reference} could not be read: ${errorMessage(error)}`,
      );
      manifests.set(key, check);
    }
    return check;
  };

  const broken: BrokenTag[] = [];
  const unverified: TagToVerify[] = [];
  await Promise.all(
    tags.map(async ({ repository, tag }) => {
      const finding = await checkManifest(repository, tag, 0);
      if (finding === CUT_SHORT) unverified.push({ repository, tag });
      else if (finding) broken.push({ repository, tag, problem: finding });
    }),
  );
  const byName = (a: TagToVerify, b: TagToVerify) =>
    `${a.repository}:${a.tag}`.localeCompare(`${b.repository}:${b.tag}`);
  broken.sort(byName);
  unverified.sort(byName);
  return { tags: tags.length, manifests: manifests.size, blobs: blobs.size, broken, unverified };
}

/** Every tag of the given repositories, as the registry lists them now. */
export async function currentTags(
  registry: Registry,
  repositories: readonly string[],
  limit: Limit,
): Promise<TagToVerify[]> {
  const lists = await Promise.all(
    repositories.map(async (repository) =>
      (await limit(() => registry.listTags(repository))).map((tag) => ({ repository, tag })),
    ),
  );
  return lists.flat();
}

/** The selected repositories of the catalog, and every tag they hold now. */
export async function selectionTags(
  registry: Registry,
  include: readonly string[],
  exclude: readonly string[],
): Promise<{ catalog: string[]; tags: TagToVerify[] }> {
  const catalog = await registry.listRepositories();
  const repositories = catalog.filter(repositoryFilter(include, exclude));
  return { catalog, tags: await currentTags(registry, repositories, createLimit(registry.concurrency)) };
}

/** Broken kept images, each named, then how many kept tags the deadline left unverified. */
export function verificationProblems(verification: Verification): string[] {
  const problems = verification.broken.map(
    (broken) => `BROKEN kept image ${broken.repository}:${broken.tag}: ${broken.problem}`,
  );
  const unverified = verification.unverified.length;
  if (unverified > 0) {
    problems.push(
      `verification incomplete: ${unverified} of ${plural(verification.tags, 'kept tag')} not verified before the deadline`,
    );
  }
  return problems;
}
