import { parseArgs } from 'node:util';
// The command line's one table: the commands, every option with the commands it belongs to, and the help
// texts. `--help`, `help <command>`, the parser and the README's reference are all made from it.
import { distance } from './domain/edit-distance.js';
import { DEFAULT_WIDTH, table, wrapText } from './report/text.js';

export const COMMANDS = ['plan', 'clean', 'gc', 'verify', 'du'] as const;
export type Command = (typeof COMMANDS)[number];

export interface CommandSpec {
  /** One line for the command list. */
  readonly summary: string;
  /** What it does, a few sentences, for `help <command>`. */
  readonly description: string;
  readonly examples: readonly string[];
}

export const COMMAND_SPECS: Record<Command, CommandSpec> = {
  plan: {
    summary: 'show what is stale and why; changes nothing',
    description:
      'Scans the registry and decides, by the retention policy, which tags and manifests to keep and which ' +
      'clean would delete, with the reason for each and the bytes garbage collection would then free.',
    examples: [
      "registry-janitor plan --registry http://127.0.0.1:5000 --keep-last 10 --keep-tag '^latest$'",
      'registry-janitor plan --registry http://127.0.0.1:5000 --storage-from-host --policy policy.json',
      'registry-janitor plan --registry http://127.0.0.1:5000 --keep-days 30 --json > plan.json',
    ],
  },
  clean: {
    summary: 'delete what is stale, collect garbage on the host, verify, report',
    description:
      'Plans (or takes --plan FILE), shows the plan, asks on a terminal (or takes --yes), deletes the stale ' +
      'manifests by digest, runs the garbage collector on the registry host with --gc, verifies that every ' +
      'kept image still resolves completely, and reports what was reclaimed.',
    examples: [
      'registry-janitor clean --registry http://127.0.0.1:5000 --storage-from-host --keep-last 10 --gc local --yes',
      'registry-janitor clean --plan plan.json --yes',
      'registry-janitor clean --registry http://127.0.0.1:5000 --keep-last 10 --dry-run',
    ],
  },
  gc: {
    summary: 'collect garbage on the registry host only, then verify',
    description:
      "Runs the registry's garbage collector on the host, as clean --gc does after deleting: one collection " +
      'at a time, never during a push, never with --delete-untagged, then restarts the registry and ' +
      'verifies every tag of the selected repositories. Deletes no manifest.',
    examples: [
      'registry-janitor gc --registry http://127.0.0.1:5000',
      'registry-janitor gc --registry http://127.0.0.1:5000 --gc-mode stopped',
      'registry-janitor gc --registry http://127.0.0.1:5000 --timeout 10m --state-dir /var/lib/registry-janitor',
      'registry-janitor gc --registry https://registry.example.com --gc ssm --instance-id i-0123456789abcdef0',
    ],
  },
  verify: {
    summary: 'check that every tag resolves completely',
    description:
      'Resolves every tag of the selected repositories and checks its manifest, every child of an index, ' +
      'and every config and layer, each with the size its manifest promises.',
    examples: [
      'registry-janitor verify --registry http://127.0.0.1:5000',
      "registry-janitor verify --registry http://127.0.0.1:5000 --repo 'web/*' --json",
    ],
  },
  du: {
    summary: 'show the space each repository takes, and what deleting it would free',
    description:
      'Scans the registry as plan does and shows, for each repository, its bytes in all, the bytes no other ' +
      'repository references (what deleting the whole repository would free after garbage collection), the ' +
      'bytes it shares, and the bytes only its untagged manifests hold; the largest exclusive figure first. ' +
      "With --storage-root it also gives the registry's total in storage and the bytes no manifest " +
      'references. Changes nothing.',
    examples: [
      'registry-janitor du --registry http://127.0.0.1:5000 --storage-root /var/lib/docker-registry',
      "registry-janitor du --registry http://127.0.0.1:5000 --storage-from-host --repo 'web/**' --json",
      'registry-janitor du --registry http://127.0.0.1:5000 --storage-root /srv/registry --html du.html',
    ],
  },
};

export type OptionGroup = 'Registry' | 'Selection' | 'Policy' | 'Host' | 'Output' | 'Run';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: true;
  readonly short?: string;
  /** The value's placeholder in help, e.g. `N`. */
  readonly value?: string;
  readonly group: OptionGroup;
  /** The commands that take it; `--help` and `--version` go with every command. */
  readonly commands: readonly Command[];
  /** One line for `--help`. */
  readonly help: string;
  /** The README's longer text, when one line is not enough. */
  readonly doc?: string;
}

const ALL = COMMANDS;
const SCANNING: readonly Command[] = ['plan', 'clean'];
const STORAGE: readonly Command[] = ['plan', 'clean', 'du'];
const HOST: readonly Command[] = ['plan', 'clean', 'gc', 'du'];

export const OPTIONS = {
  registry: {
    type: 'string',
    value: 'URL',
    group: 'Registry',
    commands: ALL,
    help: 'http(s)://host[:port] of the registry (or REGISTRY_URL)',
    doc: "`http://` or `https://` address of the registry, no path (or `REGISTRY_URL`). With `--plan`, the plan's own registry.",
  },
  'insecure-tls': {
    type: 'boolean',
    group: 'Registry',
    commands: ALL,
    help: "do not verify the registry's TLS certificate",
  },
  'ca-file': {
    type: 'string',
    value: 'PEM',
    group: 'Registry',
    commands: ALL,
    help: "trust the certificates in this PEM file instead of the system's",
  },
  username: {
    type: 'string',
    value: 'NAME',
    group: 'Registry',
    commands: ALL,
    help: 'log in as NAME, with the password from --password-stdin',
    doc: "Log in with this user; with `--password-stdin`. Without either: `REGISTRY_USERNAME` and `REGISTRY_PASSWORD`, else the Docker CLI's login for the host (see below).",
  },
  'password-stdin': {
    type: 'boolean',
    group: 'Registry',
    commands: ALL,
    help: 'read the password for --username from standard input',
  },
  'storage-root': {
    type: 'string',
    value: 'DIR',
    group: 'Registry',
    commands: STORAGE,
    help: "the registry's storage root on this machine (holds docker/registry/v2)",
    doc: "The registry's filesystem root as this machine sees it (the folder that holds `docker/registry/v2`: `storage.filesystem.rootdirectory` of a registry running on the host). Read-only use: lists untagged manifest revisions and push times.",
  },
  'storage-from-host': {
    type: 'boolean',
    group: 'Registry',
    commands: STORAGE,
    help: 'read the storage through the host script (docker exec; over SSM with --instance-id)',
    doc: 'The same, read inside the registry container by the host script: locally through `docker exec`, or over SSM with `--instance-id`. The way for a registry that runs in Docker.',
  },
  repo: {
    type: 'string',
    multiple: true,
    value: 'GLOB',
    group: 'Selection',
    commands: ALL,
    help: 'only these repositories (repeatable; * within a segment, ** across)',
    doc: 'Only repositories matching the glob; repeatable. `*` stays within a path segment, `**` crosses them: `web/*`, `team/**`.',
  },
  'exclude-repo': {
    type: 'string',
    multiple: true,
    value: 'GLOB',
    group: 'Selection',
    commands: ALL,
    help: 'never these repositories (repeatable)',
  },
  'keep-last': {
    type: 'string',
    value: 'N',
    group: 'Policy',
    commands: SCANNING,
    help: 'keep the N most recent images (distinct digests) of each repository',
  },
  'keep-days': {
    type: 'string',
    value: 'D',
    group: 'Policy',
    commands: SCANNING,
    help: 'keep images pushed in the last D days (30, 1.5, or a duration: 36h, 2w)',
    doc: 'Keep images pushed in the last D days: `30` and `30d` alike, fractions allowed, or a duration such as `36h`.',
  },
  'keep-tag': {
    type: 'string',
    multiple: true,
    value: 'REGEX',
    group: 'Policy',
    commands: SCANNING,
    help: "keep tags matching the RE2 regular expression (repeatable): '^latest$'",
    doc: "Keep tags matching this regular expression, in RE2 syntax (no lookaround or backreferences; see [Tag patterns](#tag-patterns)); repeatable. Anchor it: `'^latest$'`.",
  },
  'untagged-grace': {
    type: 'string',
    value: 'DUR',
    group: 'Policy',
    commands: SCANNING,
    help: 'leave untagged manifests younger than this (0, 90m, 1h30m, 7d; default 24h)',
  },
  'untagged-only': {
    type: 'boolean',
    group: 'Policy',
    commands: SCANNING,
    help: 'delete only untagged manifests that nothing kept needs; keep every tag',
    doc: 'Delete only untagged manifests nothing kept needs, past `--untagged-grace`; keep every tag, in every rule of `--policy` too. A rule on its own: the safe first cleanup. Needs `--storage-root` or `--storage-from-host` to see them.',
  },
  policy: {
    type: 'string',
    value: 'FILE',
    group: 'Policy',
    commands: SCANNING,
    help: 'per-repository rules (JSON, see policy.schema.json); flags set the defaults',
    doc: "Per-repository rules (below). The flags above set the default rule and override the file's `defaults`.",
  },
  gc: {
    type: 'string',
    value: 'WHERE',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: 'local, ssm or none: collect here or through SSM (clean: none; gc: local)',
    doc: 'Where the host script collects garbage: `local` (this machine, through `docker`), `ssm` (the host named by `--instance-id`, through SSM Run Command) or `none`. Default `none` for `clean`, `local` for `gc`.',
  },
  'gc-mode': {
    type: 'string',
    value: 'MODE',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: 'online (collect in the running container, then restart) or stopped',
    doc: '`online` (default): collect in the running container, then restart it. `stopped`: stop it, collect in a one-off container, start it again.',
  },
  container: {
    type: 'string',
    value: 'NAME',
    group: 'Host',
    commands: HOST,
    help: "the registry's container (default registry)",
  },
  'registry-config': {
    type: 'string',
    value: 'PATH',
    group: 'Host',
    commands: HOST,
    help: 'its config file inside the container (default by version)',
  },
  'no-restart': {
    type: 'boolean',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: 'do not restart after collecting (the registry then answers for deleted blobs)',
  },
  'registry-port': {
    type: 'string',
    value: 'N',
    group: 'Host',
    commands: HOST,
    help: 'the port the registry listens on inside its container (default 5000)',
  },
  'upload-wait': {
    type: 'string',
    value: 'DUR',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: 'wait this long for pushes in progress, then skip (default 5m, at most 1d)',
  },
  'lock-file': {
    type: 'string',
    value: 'PATH',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: 'host lock that keeps collections apart (default /var/lock/registry-janitor.lock)',
  },
  'log-dir': {
    type: 'string',
    value: 'PATH',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: "where the collector's full output goes on the host (default /var/log/registry-janitor)",
  },
  'state-dir': {
    type: 'string',
    value: 'PATH',
    group: 'Host',
    commands: ['clean', 'gc'],
    help: 'where --gc local records a collection left running (default ~/.local/state/registry-janitor)',
    doc: 'Where `--gc local` records a collection still running at the deadline, for the next `gc` or `clean` to report and verify first: a `pending-<registry>.json` per registry, output under `collections/`. Default `$XDG_STATE_HOME/registry-janitor`, else `~/.local/state/registry-janitor`.',
  },
  'instance-id': {
    type: 'string',
    value: 'ID',
    group: 'Host',
    commands: HOST,
    help: 'the registry host, for SSM: i-0123456789abcdef0',
  },
  region: {
    type: 'string',
    value: 'REGION',
    group: 'Host',
    commands: HOST,
    help: 'its AWS region (default from the environment)',
  },
  'ssm-document': {
    type: 'string',
    value: 'NAME',
    group: 'Host',
    commands: HOST,
    help: 'an SSM document holding the host script (default AWS-RunShellScript)',
  },
  'ssm-output-bucket': {
    type: 'string',
    value: 'NAME',
    group: 'Host',
    commands: HOST,
    help: 'S3 bucket for the full command output',
  },
  json: {
    type: 'boolean',
    group: 'Output',
    commands: ALL,
    help: 'print the plan or the result as JSON on stdout',
    doc: 'Machine-readable plan or result on stdout.',
  },
  html: {
    type: 'string',
    value: 'FILE',
    group: 'Output',
    commands: STORAGE,
    help: 'also write the report as one HTML page (charts, every decision and why)',
    doc: 'Also write the report as one self-contained HTML page that opens offline and loads nothing: the summary, a chart of the space per repository, every tag and manifest kept or deleted with its reason (a collapsible section per repository), and for `clean` the bytes before, estimated and measured after.',
  },
  quiet: {
    type: 'boolean',
    short: 'q',
    group: 'Output',
    commands: ALL,
    help: 'print only the summary lines and problems (for cron and timers)',
  },
  verbose: {
    type: 'boolean',
    short: 'v',
    group: 'Output',
    commands: ALL,
    help: 'log every HTTP request to stderr (method, path, status, time)',
    doc: 'Log every HTTP request to stderr: method, path, status and duration; never a credential.',
  },
  plan: {
    type: 'string',
    value: 'FILE',
    group: 'Run',
    commands: ['clean'],
    help: 'apply a plan saved with plan --json instead of planning again',
    doc: "Apply a plan saved with `plan --json` instead of planning again; `--registry` defaults to the plan's. Policy and selection flags are refused with it.",
  },
  'dry-run': {
    type: 'boolean',
    group: 'Run',
    commands: ['clean'],
    help: 'show what clean would do and change nothing (the same as plan)',
  },
  'max-delete': {
    type: 'string',
    value: 'N',
    group: 'Run',
    commands: SCANNING,
    help: 'delete nothing when the plan deletes more than N manifests (exit 1)',
    doc: 'A safety net for automated runs: when the plan deletes more than N manifests, `clean` deletes nothing and exits 1; `plan` shows the cap and warns. A plan saved with `--max-delete` keeps it; `clean --plan` may set another.',
  },
  yes: {
    type: 'boolean',
    short: 'y',
    group: 'Run',
    commands: ['clean'],
    help: 'do not ask; needed when standard input is not a terminal',
  },
  concurrency: {
    type: 'string',
    value: 'N',
    group: 'Run',
    commands: ALL,
    help: 'requests in flight, 1 to 64 (default 8)',
  },
  timeout: {
    type: 'string',
    value: 'DUR',
    group: 'Run',
    commands: ALL,
    help: 'give up after this long (default 1h, at most 24d); each request times out after 30 s',
    doc: 'Overall deadline for the run (default `1h`, at most `24d`). Each request also times out after 30 s.',
  },
  help: { type: 'boolean', short: 'h', group: 'Run', commands: ALL, help: 'show this help' },
  version: { type: 'boolean', group: 'Run', commands: ALL, help: 'print the version' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;

/** The option values parseArgs returns for the table, typed by each option's kind. */
export type OptionValues = {
  [K in OptionName]?: (typeof OPTIONS)[K] extends { multiple: true }
    ? string[]
    : (typeof OPTIONS)[K]['type'] extends 'boolean'
      ? boolean
      : string;
};

const GROUP_TITLES: Record<OptionGroup, string> = {
  Registry: 'Registry',
  Selection: 'Selection',
  Policy: 'Policy (an image is kept when any rule keeps it)',
  Host: 'Registry host (garbage collection, --storage-from-host)',
  Output: 'Output',
  Run: 'Run',
};

const optionEntries = () => Object.entries(OPTIONS) as [OptionName, OptionSpec][];

/** How the option is written in help: `-y, --yes`, `--keep-last N`. */
export function optionSynopsis(name: OptionName): string {
  const spec: OptionSpec = OPTIONS[name];
  return `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.value ? ` ${spec.value}` : ''}`;
}

/** Two columns, indented: the terms padded to `termWidth`, then their text wrapped beside them. */
const definitionList = (items: readonly (readonly [string, string])[], width: number, termWidth = 0) =>
  table(
    items.map(([term, text]) => [`  ${term.padEnd(termWidth)}`, text]),
    width,
  );

/** A command line for a person to read or copy, broken with ` \\` where it would not fit. */
export function exampleLines(example: string, width: number): string[] {
  const pieces = wrapText(example, width - 8);
  return pieces.map(
    (piece, index) => `${index === 0 ? '  ' : '      '}${piece}${index < pieces.length - 1 ? ' \\' : ''}`,
  );
}

/** `registry-janitor --help`, `help`, and what a bare `registry-janitor` prints. */
export function generalHelp(width = DEFAULT_WIDTH): string {
  const lines = [
    'Usage: registry-janitor <command> [options]',
    '',
    ...wrapText(
      'Cleans a self-hosted Docker registry: deletes stale images by a retention policy, runs its ' +
        'garbage collector safely on the host, and checks that every kept image still pulls.',
      width,
    ),
    '',
    'Commands',
    ...definitionList(
      COMMANDS.map((command) => [command, COMMAND_SPECS[command].summary]),
      width,
    ),
    '',
    ...wrapText(
      'Run registry-janitor help <command> (or <command> --help) for its options and examples.',
      width,
    ),
    ...wrapText(
      'Exit codes: 0 done, 1 failed (a kept image broken, a delete or the collection failed, a repository ' +
        'unreadable), 2 bad usage or input.',
      width,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** `registry-janitor help <command>`: what it does, its own options by group, and examples. */
export function commandHelp(command: Command, width = DEFAULT_WIDTH): string {
  const spec = COMMAND_SPECS[command];
  const options = optionEntries().filter(([, option]) => option.commands.includes(command));
  const termWidth = Math.max(...options.map(([name]) => optionSynopsis(name).length));
  const lines = [`Usage: registry-janitor ${command} [options]`, '', ...wrapText(spec.description, width)];
  for (const group of Object.keys(GROUP_TITLES) as OptionGroup[]) {
    const inGroup = options.filter(([, option]) => option.group === group);
    if (inGroup.length === 0) continue;
    lines.push(
      '',
      GROUP_TITLES[group],
      ...definitionList(
        inGroup.map(([name, option]) => [optionSynopsis(name), option.help]),
        width,
        termWidth,
      ),
    );
  }
  lines.push('', 'Examples');
  for (const example of spec.examples) lines.push(...exampleLines(example, width));
  return `${lines.join('\n')}\n`;
}

/** The README's option reference: one row an option, with the commands that take it. */
export function optionReference(): string {
  const rows = optionEntries().map(([name, option]) => [
    `\`${optionSynopsis(name)}\``,
    option.commands.length === COMMANDS.length ? 'all' : option.commands.join(', '),
    option.doc ?? `${option.help.charAt(0).toUpperCase()}${option.help.slice(1)}.`,
  ]);
  const header = ['option', 'commands', 'meaning'];
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => row[i]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const OPTIONS_START = '<!-- options:start -->';
const OPTIONS_END = '<!-- options:end -->';

/** A README with the option reference between its markers replaced by the one the table makes now. */
export function readmeWithOptions(readme: string): string {
  const start = readme.indexOf(OPTIONS_START);
  const end = readme.indexOf(OPTIONS_END);
  if (start < 0 || end < start)
    throw new Error(`the README has no ${OPTIONS_START} … ${OPTIONS_END} section`);
  return `${readme.slice(0, start + OPTIONS_START.length)}\n${optionReference()}\n${readme.slice(end)}`;
}

/** `unknown command "plna": did you mean plan? (the commands are …)`: a mistake, the likely fix, the choices. */
export function unknownWord(what: string, word: string, candidates: readonly string[], prefix = ''): string {
  const guess = closest(word, candidates);
  return `unknown ${what} ${JSON.stringify(word)}: ${guess ? `did you mean ${prefix}${guess}? ` : ''}(the ${what}s are ${candidates.map((c) => `${prefix}${c}`).join(', ')})`;
}

/** The closest of `candidates` to a mistyped `word`, when it is close enough to be what was meant. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const prefix = best.startsWith(word) && word.length >= 3;
  return prefix || bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
  }
}

export interface ParsedArgs {
  /** The first word: a command, `help`, or a mistake for loadCliConfig to report. */
  readonly command: string | undefined;
  /** Words after the command: only `help <command>` takes one. */
  readonly rest: readonly string[];
  readonly values: OptionValues;
}

const PARSER_OPTIONS = Object.fromEntries(
  (Object.entries(OPTIONS) as [OptionName, OptionSpec][]).map(([name, spec]) => [
    name,
    {
      type: spec.type,
      ...(spec.multiple ? { multiple: true } : {}),
      ...(spec.short ? { short: spec.short } : {}),
    },
  ]),
);
const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

/**
 * Splits argv into the command and its options. Every unknown option (with the closest known one), missing
 * value and value given to a switch is reported at once.
 */
export function parseArgv(argv: readonly string[]): ParsedArgs {
  const { values, positionals, tokens } = parseArgs({
    args: [...argv],
    options: PARSER_OPTIONS,
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  const problems: string[] = [];
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const spec = (OPTIONS as Record<string, OptionSpec>)[token.name];
    if (!spec) {
      const guess = closest(token.name, OPTION_NAMES);
      problems.push(`unknown option ${token.rawName}${guess ? `: did you mean --${guess}?` : ''}`);
    } else if (spec.type === 'string' && token.value === undefined) {
      problems.push(
        `${token.rawName}: needs a value (${spec.value ?? 'a value'}); one that starts with "-" goes after "=", as in --${token.name}=-1`,
      );
    } else if (spec.type === 'boolean' && token.inlineValue) {
      problems.push(`${token.rawName}: takes no value, got ${JSON.stringify(token.value)}`);
    }
  }
  if (problems.length > 0) throw new UsageError(problems);
  const [command, ...rest] = positionals;
  return { command, rest, values: values as OptionValues };
}
