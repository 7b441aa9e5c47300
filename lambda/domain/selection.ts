import picomatch from 'picomatch';
import { distance } from './edit-distance.js';
import { printable } from './names.js';

/**
 * Repository selection by globs (`*` within a path segment, `**` across segments): a repository is selected
 * when it matches an include (or there are none) and no exclude.
 */
export function repositoryFilter(
  include: readonly string[],
  exclude: readonly string[],
): (name: string) => boolean {
  const included = include.length > 0 ? picomatch(include as string[]) : () => true;
  const excluded = exclude.length > 0 ? picomatch(exclude as string[]) : () => false;
  return (name) => included(name) && !excluded(name);
}

/** A glob as it would be typed in a shell, quoted. */
const quoted = (glob: string) => (/^[\x20-\x26\x28-\x7e]*$/.test(glob) ? `'${glob}'` : printable(glob));
const flags = (flag: string, globs: readonly string[]) =>
  globs.map((glob) => `${flag} ${quoted(glob)}`).join(', ');
const repositories = (count: number) =>
  count === 1 ? "the registry's only repository" : `the registry's ${count} repositories`;

/**
 * What to say of a selection that leaves no repository: which flags select nothing and, for a glob that
 * matches nothing, the glob or names it was likely meant to be. Empty when something is selected.
 */
export function selectionWarnings(
  include: readonly string[],
  exclude: readonly string[],
  catalog: readonly string[],
): string[] {
  if (include.length + exclude.length === 0 || catalog.some(repositoryFilter(include, exclude))) return [];
  if (catalog.length === 0) {
    const given = [flags('--repo', include), flags('--exclude-repo', exclude)].filter(Boolean).join(', ');
    return [`${given}: the registry has no repositories`];
  }
  const included = catalog.filter(repositoryFilter(include, []));
  if (included.length === 0) {
    const hints = include.flatMap((glob) => {
      const hint = globHint(glob, catalog);
      return hint ? [hint] : [];
    });
    const one = include.length === 1;
    const miss =
      catalog.length === 1
        ? `${one ? 'does' : 'do'} not match the registry's only repository`
        : `${one ? 'matches' : 'match'} none of the registry's ${catalog.length} repositories`;
    return [`${flags('--repo', include)} ${miss}${hints.length > 0 ? ` (${hints.join('; ')})` : ''}`];
  }
  const selected = included.length === 1 ? 'repository' : `${included.length} repositories`;
  const from =
    include.length === 0
      ? repositories(catalog.length)
      : `the ${selected} ${flags('--repo', include)} selects`;
  const verb = exclude.length === 1 ? 'excludes' : 'exclude';
  return [`${flags('--exclude-repo', exclude)} ${verb} ${included.length === 1 ? '' : 'all '}${from}`];
}

/** For a glob that matches no repository: the wider glob that would, or the names closest to it. */
function globHint(glob: string, catalog: readonly string[]): string | undefined {
  const wider: [string, string][] = [
    [glob.replace(/(?<!\*)\*(?!\*)/g, '**'), '* stays within one path segment'],
    [`${glob.replace(/\/+$/, '')}/**`, 'a name without * is the whole repository name'],
  ];
  for (const [candidate, why] of wider) {
    const widened = picomatch(candidate);
    if (candidate !== glob && catalog.some((name) => widened(name)))
      return `did you mean ${quoted(candidate)}? ${why}`;
  }
  const literal = glob.split(/[*?[\]{}()!+@]/)[0] ?? '';
  const wildcard = literal.length < glob.length;
  if (literal.length === 0) return undefined;
  const scored = catalog.map((name) => ({
    name,
    edits: distance(literal, wildcard ? name.slice(0, literal.length) : name),
  }));
  const best = Math.min(...scored.map((entry) => entry.edits));
  if (best > Math.max(1, Math.floor(literal.length / 3))) return undefined;
  const closest = scored.filter((entry) => entry.edits === best).map((entry) => entry.name);
  return `closest: ${closest.slice(0, 3).join(', ')}${closest.length > 3 ? ', …' : ''}`;
}
