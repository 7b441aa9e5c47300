import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BlobRef, Inventory, Manifest, Repository } from '../../lambda/domain/inventory.js';
import type { Digest } from '../../lambda/domain/names.js';
import { type Plan, plan, type RepositoryPlan, referrerTagSubject } from '../../lambda/domain/plan.js';
import { ruleFor } from '../../lambda/domain/policy.js';
import { blobsOf } from '../../lambda/domain/reclaim.js';
import { inventories, policies, reordered } from './arbitraries.js';
import { NOW } from './builders.js';

const RUNS = { numRuns: 250 };

const deletedIn = (repositoryPlan: RepositoryPlan): Set<Digest> =>
  new Set(repositoryPlan.manifests.filter((m) => m.decision === 'delete').map((m) => m.digest));

const tagsOn = (repository: Repository, digest: Digest) =>
  repository.tags.filter((tag) => tag.digest === digest).map((tag) => tag.name);

/**
 * The manifests that belong to `subject`: those whose `subject` field names it, and those tagged only in
 * cosign's or the OCI fallback's form for it.
 */
function referrersOf(repository: Repository, subject: Digest): Manifest[] {
  return repository.manifests.filter((manifest) => {
    if (manifest.subject !== undefined) return manifest.subject === subject;
    const tags = tagsOn(repository, manifest.digest);
    return tags.length > 0 && tags.every((tag) => referrerTagSubject(tag) === subject);
  });
}

/** Each repository's plan beside the repository it was made from. */
const pairs = (inv: Inventory, result: Plan): [Repository, RepositoryPlan][] =>
  result.repositories.map((repositoryPlan, n) => [inv.repositories[n] as Repository, repositoryPlan]);

describe('plan, for any realistic inventory and policy', () => {
  it('never deletes a digest that a kept tag, a kept index or a kept subject needs, nor a tagged one when untagged only', () => {
    fc.assert(
      fc.property(inventories, policies, (inv, policy) => {
        for (const [repository, planned] of pairs(inv, plan(inv, policy, NOW))) {
          const deleted = deletedIn(planned);
          for (const tag of planned.tags) {
            expect(deleted.has(tag.digest), `tag ${tag.tag} is ${tag.decision}`).toBe(
              tag.decision === 'delete',
            );
          }
          for (const kept of repository.manifests.filter((m) => !deleted.has(m.digest))) {
            for (const child of kept.children)
              expect(deleted.has(child.digest), 'child of a kept index').toBe(false);
            for (const referrer of referrersOf(repository, kept.digest))
              expect(deleted.has(referrer.digest), 'referrer of a kept subject').toBe(false);
          }
          const rule = ruleFor(policy, repository.name);
          if (repository.error !== undefined || rule.protect) {
            expect(deleted.size).toBe(0);
          }
          if (rule.untaggedOnly) {
            const tagged = new Set(repository.tags.map((tag) => tag.digest));
            expect(
              [...deleted].filter((digest) => tagged.has(digest)),
              'tagged, under untagged only',
            ).toEqual([]);
          }
        }
      }),
      RUNS,
    );
  });

  it('deletes each deleted digest once, with the tags on it, after what depends on it in its unit', () => {
    fc.assert(
      fc.property(inventories, policies, (inv, policy) => {
        for (const [repository, planned] of pairs(inv, plan(inv, policy, NOW))) {
          const steps = planned.deletions.flatMap((unit) => unit.steps);
          expect(steps.map((step) => step.digest).sort()).toEqual([...deletedIn(planned)].sort());
          for (const step of steps)
            expect([...step.tags].sort()).toEqual(tagsOn(repository, step.digest).sort());
          const byDigest = new Map(repository.manifests.map((m) => [m.digest, m]));
          for (const unit of planned.deletions) {
            const position = new Map(unit.steps.map((step, n) => [step.digest, n]));
            expect(unit.steps.at(-1)?.digest).toBe(unit.root);
            for (const [digest, at] of position) {
              const dependents = [
                ...(byDigest.get(digest)?.children.map((child) => child.digest) ?? []),
                ...referrersOf(repository, digest).map((referrer) => referrer.digest),
              ];
              for (const dependent of dependents) expect(position.get(dependent) ?? -1).toBeLessThan(at);
            }
          }
        }
      }),
      RUNS,
    );
  });

  it('never counts a blob of a kept manifest in the bytes it frees', () => {
    fc.assert(
      fc.property(inventories, policies, (inv, policy) => {
        const result = plan(inv, policy, NOW);
        const keptBlobs = new Set<Digest>();
        const deletedBlobs = new Map<Digest, number>();
        for (const [repository, planned] of pairs(inv, result)) {
          const deleted = deletedIn(planned);
          for (const manifest of repository.manifests)
            for (const blob of blobsOf(manifest)) {
              if (deleted.has(manifest.digest)) deletedBlobs.set(blob.digest, blob.size);
              else keptBlobs.add(blob.digest);
            }
        }
        // Kept blobs a trillion times their size: the figure does not move.
        const again = plan(resized(inv, keptBlobs, 1e12), policy, NOW);

        expect(again.reclaim).toEqual(result.reclaim);
        const freed = [...deletedBlobs].filter(([digest]) => !keptBlobs.has(digest));
        expect(result.reclaim.bytes).toBe(freed.reduce((sum, [, size]) => sum + size, 0));
        expect(result.reclaim.blobs).toBe(freed.length);
      }),
      RUNS,
    );
  });

  it('is the same whatever order the inventory lists repositories, tags, manifests and blobs in', () => {
    fc.assert(
      fc.property(
        inventories.chain((inv) => fc.tuple(fc.constant(inv), reordered(inv))),
        policies,
        ([inv, shuffled], policy) => {
          expect(canonical(plan(shuffled, policy, NOW))).toEqual(canonical(plan(inv, policy, NOW)));
        },
      ),
      RUNS,
    );
  });
});

/** The inventory with the blobs given resized, wherever a manifest refers to them. */
function resized(inv: Inventory, digests: ReadonlySet<Digest>, size: number): Inventory {
  const blob = <T extends BlobRef>(ref: T): T => (digests.has(ref.digest) ? { ...ref, size } : ref);
  return {
    ...inv,
    repositories: inv.repositories.map((repository) => ({
      ...repository,
      manifests: repository.manifests.map((manifest) => ({
        ...blob(manifest),
        ...(manifest.config ? { config: blob(manifest.config) } : {}),
        layers: manifest.layers.map(blob),
        children: manifest.children.map(blob),
      })),
    })),
    ...(inv.storedBlobs ? { storedBlobs: inv.storedBlobs.map(blob) } : {}),
  };
}

/** A plan with the lists that follow the inventory's order (repositories, tags) sorted. */
function canonical(result: Plan): unknown {
  return {
    ...result,
    repositories: [...result.repositories]
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((repository) => ({
        ...repository,
        tags: [...repository.tags].sort((a, b) => a.tag.localeCompare(b.tag)),
      })),
  };
}
