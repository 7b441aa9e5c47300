import picomatch from 'picomatch';

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
