import { constants } from 'node:fs';
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import {
  type CleanupPorts,
  type CleanupReport,
  cleanup,
  makePlan,
  type RunReport,
  scanSelection,
  withDeleteCheck,
} from './cleanup.js';
import { type CliConfig, loadCliConfig } from './cli-config.js';
import { EXIT, type GuardedIo, outputWidth, usageFailure } from './cli-io.js';
import { type ParsedArgs, UsageError } from './command-line.js';
import { printable } from './domain/names.js';
import { cleanWouldStop, type Plan } from './domain/plan.js';
import { selectionWarnings } from './domain/selection.js';
import { type Usage, usage } from './domain/usage.js';
import { errorMessage } from './error-message.js';
import { HostStorage } from './host/host-storage.js';
import { LocalRunner } from './host/local-runner.js';
import { PendingCollectionFile } from './host/pending-file.js';
import type { HostResume, HostRunner, StorageLister } from './ports.js';
import type { Redactor } from './redact.js';
import { createRegistryClient, type HttpExchange } from './registry/client.js';
import { resolveDockerCredentials } from './registry/docker-config.js';
import {
  deletesWarning,
  earlierCollectionLine,
  fitText,
  formatBytes,
  type PlanOutput,
  planSummary,
  renderPlan,
  renderRunReport,
  renderUsage,
  renderVerification,
  usageSummary,
} from './report/format.js';
import { type ReportPage, renderReportPage } from './report/html.js';
import { FilesystemStorage, StorageRootError } from './storage/filesystem.js';
import { selectionTags, verifyTags } from './verify.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

async function hostRunner(
  config: CliConfig,
  io: GuardedIo,
  deadline: AbortSignal,
): Promise<HostRunner | undefined> {
  const host = config.host;
  if (!host) return undefined;
  if (host.runner === 'local') {
    // With a state folder, a collection still running at the deadline is left running, for the next run.
    return new LocalRunner({
      env: io.env,
      signal: deadline,
      ...(host.stateDir !== undefined ? { collectionsDir: join(host.stateDir, 'collections') } : {}),
    });
  }
  // The AWS SDK is loaded only for SSM: every other run starts without it.
  const [{ SsmRunner }, { SSMClient }, { S3Client }] = await Promise.all([
    import('./host/ssm-runner.js'),
    import('@aws-sdk/client-ssm'),
    import('@aws-sdk/client-s3'),
  ]);
  const clientConfig = host.region !== undefined ? { region: host.region } : {};
  return new SsmRunner({
    ssm: io.aws?.ssm ?? new SSMClient(clientConfig),
    instanceId: host.instanceId,
    deadlineMs: config.timeoutMs,
    ...(io.aws?.sleep ? { sleep: io.aws.sleep } : {}),
    ...(host.document !== undefined ? { documentName: host.document } : {}),
    ...(host.outputBucket !== undefined
      ? { outputBucket: host.outputBucket, s3: io.aws?.s3 ?? new S3Client(clientConfig) }
      : {}),
  });
}

/** The ports of a command: with `--gc local`, the record of a collection left running and what resumes it. */
interface CliPorts extends CleanupPorts {
  readonly pending?: PendingCollectionFile;
}

async function buildPorts(config: CliConfig, io: GuardedIo, deadline: AbortSignal): Promise<CliPorts> {
  const credentials = config.credentials.kind === 'none' ? undefined : config.credentials;
  const registry = createRegistryClient({
    url: config.registryUrl,
    concurrency: config.concurrency,
    insecureTls: config.insecureTls,
    deadline,
    userAgent: 'registry-janitor',
    ...(config.ca !== undefined ? { ca: config.ca } : {}),
    ...(credentials
      ? { credentials: { username: credentials.username, password: credentials.password } }
      : {}),
    onInvalidName: (kind, value) =>
      io.stderr.write(`warning: skipped invalid ${kind} name ${printable(value)}\n`),
    onToken: (token) => io.mask(token),
    ...(config.verbose
      ? {
          onRequest: (exchange: HttpExchange) =>
            io.stderr.write(
              `http: ${exchange.method} ${exchange.url} ${exchange.outcome} ${exchange.durationMs} ms\n`,
            ),
        }
      : {}),
  });
  const progress = io.stderr.isTTY
    ? {
        update: (text: string) => {
          io.stderr.clearLine();
          io.stderr.write(text);
        },
      }
    : undefined;
  const host = await hostRunner(config, io, deadline);
  const params = config.host?.params ?? {};
  let storage: StorageLister | undefined;
  if (config.storageRoot !== undefined) storage = new FilesystemStorage(config.storageRoot);
  else if (config.storageFromHost && host) {
    storage = new HostStorage(host, params, {
      label: `--storage-from-host (container ${params.container ?? 'registry'})`,
      onInvalid: (message) => io.stderr.write(`warning: ${message}\n`),
    });
  }
  const stateDir = config.host?.runner === 'local' ? config.host.stateDir : undefined;
  const resume: HostResume | undefined =
    stateDir !== undefined && host instanceof LocalRunner ? host : undefined;
  return {
    registry,
    clock: { now: () => new Date() },
    ...(storage ? { storage } : {}),
    ...(host ? { host } : {}),
    ...(resume && stateDir !== undefined
      ? { resume, pending: new PendingCollectionFile(stateDir, registry.origin) }
      : {}),
    ...(progress ? { progress } : {}),
  };
}

/**
 * What the run found of a collection an earlier one left running (before its report), and what it leaves
 * running itself (after), as lines for a person.
 */
function collectionLines(
  done: CleanupReport,
  pending: PendingCollectionFile | undefined,
): { before: string; after: string } {
  const line = (text: string | undefined) => (text === undefined ? '' : `${text}\n`);
  return {
    before: line(done.collection && earlierCollectionLine(done.collection)),
    after: line(
      done.pendingCommandId !== undefined && pending
        ? `Still collecting: recorded in ${pending.path}; the next gc or clean --gc local reports and verifies it first (delete the file to forget it)`
        : undefined,
    ),
  };
}

async function confirm(io: GuardedIo, question: string): Promise<boolean> {
  io.stderr.write(question);
  // Without an output readline echoes nothing itself: the question went through the guarded stderr.
  const prompt = createInterface({ input: io.stdin });
  try {
    return /^y(es)?$/i.test((await prompt.question('')).trim());
  } finally {
    prompt.close();
  }
}

/**
 * The plan to show or apply, with a fresh check that the registry accepts its deletes, and, for the HTML
 * report, the space each repository takes (unknown for a saved plan).
 */
async function loadPlan(
  config: CliConfig,
  ports: CleanupPorts,
): Promise<{ plan: Plan; warnings: readonly string[]; usage?: Usage }> {
  const maxDelete =
    config.maxDelete !== undefined ? { limit: config.maxDelete, setting: '--max-delete' } : undefined;
  if (config.savedPlan) {
    const saved = maxDelete ? { ...config.savedPlan, maxDelete } : config.savedPlan;
    return { plan: await withDeleteCheck(ports.registry, saved), warnings: [] };
  }
  const { plan, catalog, inventory } = await makePlan(ports, {
    include: config.include,
    exclude: config.exclude,
    policy: config.policy,
    ...(maxDelete ? { maxDelete } : {}),
  });
  return {
    plan,
    warnings: selectionWarnings(config.include, config.exclude, catalog),
    ...(config.html !== undefined ? { usage: usage(inventory) } : {}),
  };
}

const FS_REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is not a folder',
  EISDIR: 'it is a folder',
  ENOSPC: 'no space left on the device',
};

const fsReason = (error: unknown): string => {
  const code = (error as NodeJS.ErrnoException).code ?? '';
  return FS_REASONS[code] ?? errorMessage(error);
};

/** Why a file could not be written at `path`, as far as can be told without writing it; undefined when it could. */
async function cannotWrite(path: string): Promise<string | undefined> {
  try {
    if ((await stat(path)).isDirectory()) return 'it is a folder';
    await access(path, constants.W_OK);
    return undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') return fsReason(error);
  }
  const folder = dirname(resolve(path));
  try {
    if (!(await stat(folder)).isDirectory()) return `${folder} is not a folder`;
    await access(folder, constants.W_OK);
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT'
      ? `the folder ${folder} does not exist`
      : `the folder ${folder}: ${fsReason(error)}`;
  }
}

/** Writes the HTML report when --html asks for one; false when it could not be written (said on stderr). */
async function savePage(
  config: CliConfig,
  io: GuardedIo,
  page: Omit<ReportPage, 'command'>,
): Promise<boolean> {
  if (config.html === undefined) return true;
  const text = io.redactor.text(renderReportPage(io.redactor.value({ command: config.command, ...page })));
  try {
    await writeFile(config.html, text);
    return true;
  } catch (error) {
    io.stderr.write(`error: --html: writing ${config.html} failed: ${fsReason(error)}\n`);
    return false;
  }
}

async function execute(config: CliConfig, io: GuardedIo): Promise<number> {
  const deadline = AbortSignal.timeout(config.timeoutMs);
  const ports = await buildPorts(config, io, deadline);
  const width = outputWidth(io);
  if (config.command === 'verify') return verify(config, io, ports, width);
  if (config.command === 'du') return du(config, io, ports, width);
  // A collection killed together with its watchdog can leave the registry stopped, and the scan needs it.
  if (config.command === 'gc' && ports.host && config.host) {
    const recovered = (await ports.host.run('recover', config.host.params).catch(() => undefined))?.summary;
    if (recovered?.status === 'done' || recovered?.status === 'failed') {
      io.stderr.write(fitText(`recover ${recovered.status}: ${recovered.reason ?? ''}\n`, width));
    }
  }
  const { plan, warnings, usage: space } = await loadPlan(config, ports);
  const page = async (run?: RunReport): Promise<boolean> =>
    savePage(config, io, {
      registry: plan.registry,
      createdAt: plan.createdAt,
      plan,
      ...(space ? { usage: space } : {}),
      ...(run ? { run } : {}),
    });
  if (ports.progress) io.stderr.clearLine();
  const consequence =
    config.command === 'gc' ? 'gc collects the whole registry but verifies no tag after it' : 'nothing to do';
  for (const warning of warnings) io.stderr.write(fitText(`warning: ${warning}; ${consequence}\n`, width));
  const failedRepositories = plan.repositories.filter((r) => r.error !== undefined);
  for (const repository of failedRepositories) {
    io.stderr.write(
      `error: repository ${repository.name} could not be scanned and is left alone: ${repository.error}\n`,
    );
  }
  const scanExit = failedRepositories.length > 0 ? EXIT.failed : EXIT.done;
  // What the human output on stdout already says is repeated on stderr only when stdout is not the terminal.
  const stdoutOnTerminal = !config.json && io.stdout.isTTY === true;
  const showPlan = (output: PlanOutput = {}): void => {
    if (config.json) return;
    io.stdout.write(
      config.quiet
        ? fitText(`${planSummary(plan, output).join('\n')}\n`, width)
        : renderPlan(plan, width, output),
    );
  };

  if (config.command === 'plan') {
    if (config.json) io.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
    else showPlan();
    const warning = deletesWarning(plan);
    if (warning && !stdoutOnTerminal) io.stderr.write(fitText(`${warning}\n`, width));
    return (await page()) ? scanExit : EXIT.failed;
  }

  const units = plan.repositories.reduce((sum, r) => sum + r.deletions.length, 0);
  if (config.command === 'clean') {
    const refused = cleanWouldStop(plan);
    showPlan({ deletes: false });
    if (refused) {
      if (config.json) io.stdout.write(`${JSON.stringify({ plan }, null, 2)}\n`);
      io.stderr.write(fitText(`error: clean stopped before deleting anything: ${refused}\n`, width));
      await page();
      return EXIT.failed;
    }
    if (units === 0 && !config.json && !config.quiet) io.stdout.write('Nothing to delete.\n');
    if (units > 0 && !config.yes) {
      const question = `Delete ${plan.totals.manifestsDeleted} manifests (frees ${plan.reclaim.exact ? '' : 'at most '}${formatBytes(plan.reclaim.bytes)} after garbage collection)? [y/N] `;
      if (!(await confirm(io, question))) {
        io.stderr.write('Nothing deleted.\n');
        return (await page()) ? EXIT.done : EXIT.failed;
      }
    }
  }
  const done = await cleanup(
    { ...ports, registry: async () => ports.registry },
    {
      kind: 'cycle',
      plan: { planned: plan },
      ...(config.host ? { host: config.host.params } : {}),
      collect: config.collectGarbage,
      ...(config.command === 'gc' ? { collectAlways: true } : {}),
    },
  );
  if (ports.progress) io.stderr.clearLine();
  const report = done.run;
  const found = collectionLines(done, ports.pending);
  const collections = {
    ...(done.collection ? { collection: done.collection } : {}),
    ...(done.pendingCommandId !== undefined && ports.pending
      ? { pendingCollection: { commandId: done.pendingCommandId, record: ports.pending.path } }
      : {}),
  };
  if (!report) {
    if (config.json) io.stdout.write(`${JSON.stringify(collections, null, 2)}\n`);
    else io.stdout.write(fitText(`${found.before}${found.after}`, width));
    for (const problem of done.problems) io.stderr.write(`error: ${problem}\n`);
    return done.outcome === 'failed' ? EXIT.failed : EXIT.done;
  }
  if (config.json) {
    const shown = config.command === 'gc' ? { report } : { plan, report };
    io.stdout.write(`${JSON.stringify({ ...shown, ...collections }, null, 2)}\n`);
  } else {
    io.stdout.write(
      `${config.quiet || config.command === 'gc' ? '' : '\n'}${fitText(found.before, width)}${renderRunReport(report, width)}${fitText(found.after, width)}`,
    );
  }
  // The run report shows its own problems; what settling an earlier collection found is told here.
  const told = stdoutOnTerminal ? new Set(report.problems) : new Set<string>();
  for (const problem of done.problems) if (!told.has(problem)) io.stderr.write(`error: ${problem}\n`);
  const saved = config.command === 'gc' || (await page(report));
  return done.outcome === 'failed' || !saved ? EXIT.failed : EXIT.done;
}

/** `du`: the scan plan makes, then the space each repository takes, and the registry's totals. */
async function du(config: CliConfig, io: GuardedIo, ports: CleanupPorts, width: number): Promise<number> {
  const { inventory, catalog } = await scanSelection(ports, config);
  if (ports.progress) io.stderr.clearLine();
  for (const warning of selectionWarnings(config.include, config.exclude, catalog))
    io.stderr.write(fitText(`warning: ${warning}; nothing to measure\n`, width));
  const failed = inventory.repositories.filter((r) => r.error !== undefined);
  for (const repository of failed) {
    io.stderr.write(
      `error: repository ${repository.name} could not be scanned and is not counted: ${repository.error}\n`,
    );
  }
  const measured = usage(inventory);
  if (config.json) io.stdout.write(`${JSON.stringify(measured, null, 2)}\n`);
  else
    io.stdout.write(
      config.quiet ? fitText(`${usageSummary(measured).join('\n')}\n`, width) : renderUsage(measured, width),
    );
  const saved = await savePage(config, io, {
    registry: inventory.registry,
    createdAt: inventory.scannedAt,
    usage: measured,
  });
  return failed.length > 0 || !saved ? EXIT.failed : EXIT.done;
}

async function verify(config: CliConfig, io: GuardedIo, ports: CleanupPorts, width: number): Promise<number> {
  const { catalog, tags } = await selectionTags(ports.registry, config.include, config.exclude);
  for (const warning of selectionWarnings(config.include, config.exclude, catalog))
    io.stderr.write(fitText(`warning: ${warning}; nothing to verify\n`, width));
  const verification = await verifyTags(ports.registry, tags);
  io.stdout.write(
    config.json ? `${JSON.stringify(verification, null, 2)}\n` : renderVerification(verification, width),
  );
  return verification.broken.length + verification.unverified.length > 0 ? EXIT.failed : EXIT.done;
}

/** A command once its line is parsed: configure, run, print. Returns the exit code; never throws. */
export async function runCommand(
  parsed: ParsedArgs,
  argv: readonly string[],
  io: GuardedIo,
  redactor: Redactor,
  width: number,
): Promise<number> {
  let config: CliConfig;
  try {
    if (parsed.command === 'clean' && !parsed.values.yes && !parsed.values['dry-run'] && !io.stdin.isTTY) {
      throw new UsageError(['clean deletes manifests: pass --yes to confirm when not running on a terminal']);
    }
    config = await loadCliConfig(parsed, {
      env: io.env,
      readFile: (path) => readFile(path, 'utf8'),
      readStdin: () => readAll(io.stdin),
      dockerCredentials: (host) => resolveDockerCredentials(host, { env: io.env }),
      cannotWrite,
    });
  } catch (error) {
    return usageFailure(io, error, parsed.command ?? argv.find((arg) => !arg.startsWith('-')));
  }
  if (config.credentials.kind !== 'none') redactor.addCredentials(config.credentials);
  for (const warning of config.warnings) io.stderr.write(fitText(`warning: ${warning}\n`, width));
  try {
    return await execute(config, io);
  } catch (error) {
    if (error instanceof UsageError) return usageFailure(io, error, config.command);
    if (error instanceof StorageRootError)
      return usageFailure(io, new UsageError([error.message]), config.command);
    io.stderr.write(`error: ${errorMessage(error)}\n`);
    return EXIT.failed;
  }
}
