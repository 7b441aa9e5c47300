import { posix } from 'node:path';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandOutput,
  SendCommandCommand,
  type SendCommandCommandInput,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { INSTANCE_ID, S3_BUCKET, SSM_COMMAND_ID, SSM_DOCUMENT } from '../identifiers.js';
import type { HostAction, HostParams, HostRun, HostRunner } from '../ports.js';
import { HOST_PARAMETERS, hostEnvironment, maintenanceScript } from './script.js';
import { parseHostOutput } from './summary.js';

/** GetCommandInvocation keeps only this many characters of a command's stdout. */
export const SSM_STDOUT_LIMIT = 24_000;
/** The step name of the custom document's `aws:runShellScript` step; part of the S3 key of its output. */
export const DEFAULT_STEP_NAME = 'runMaintenance';
export const RUN_SHELL_SCRIPT = 'AWS-RunShellScript';

const STEP_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;
const KEY_PREFIX = /^[A-Za-z0-9!_.*'()/-]{1,400}$/;
const PARAMETER_NAME = /^[a-zA-Z0-9]+$/;
const SCRIPT_VARIABLE = /^RJ_[A-Z0-9_]+$/;
/**
 * The execution timeouts the SSM Agent honours (`pluginutil.ValidateExecutionTimeout`): outside them it silently
 * runs the script for its default of 3600 seconds.
 */
export const EXECUTION_TIMEOUT_SECONDS = { min: 5, max: 172_800, default: 3_600 } as const;
const TRUNCATED_SUFFIX = '--output truncated--';
const TRUNCATION_SLACK = TRUNCATED_SUFFIX.length + 12;
const S3_ATTEMPTS = 4;

export type SsmRunnerErrorCode =
  | 'RJ_SSM_INVALID_OPTIONS'
  | 'RJ_SSM_ACCESS_DENIED'
  | 'RJ_SSM_INSTANCE'
  | 'RJ_SSM_DOCUMENT'
  | 'RJ_SSM_PARAMETERS'
  | 'RJ_SSM_OUTPUT_FOLDER'
  | 'RJ_SSM_UNKNOWN_COMMAND'
  | 'RJ_SSM_SEND'
  | 'RJ_SSM_POLL';

/** A problem talking to SSM; `code` is stable, the message says what to fix. */
export class SsmRunnerError extends Error {
  override readonly name = 'SsmRunnerError';
  constructor(
    readonly code: SsmRunnerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A HostRun with what SSM said about the invocation. */
export interface SsmHostRun extends HostRun {
  /** Why the run failed or has no usable summary, when the runner knows more than the summary says. */
  readonly reason?: string;
  /** SSM's Status and StatusDetails of the invocation, e.g. `TimedOut (Execution Timed Out)`. */
  readonly ssmStatus?: string;
}

export interface SsmRunnerOptions {
  readonly ssm: SSMClient;
  /** Reads the full stdout from the output bucket; required with `outputBucket`. */
  readonly s3?: S3Client;
  readonly instanceId: string;
  /** A Command document built with documentContent(); without it the script is sent through AWS-RunShellScript. */
  readonly documentName?: string;
  /** The step name of that document. @default DEFAULT_STEP_NAME */
  readonly stepName?: string;
  /** SSM writes the complete stdout here; without it only the first 24,000 characters can be read. */
  readonly outputBucket?: string;
  readonly outputPrefix?: string;
  /** How long run() and resume() wait for the command before answering `running`. */
  readonly deadlineMs: number;
  /** First interval between polls; it grows by half each time up to maxPollIntervalMs. @default 2000 */
  readonly pollIntervalMs?: number;
  /** @default 10000 */
  readonly maxPollIntervalMs?: number;
  /** How long the script may run on the instance (5 to 172800). @default the document's, 3600 for AWS-RunShellScript */
  readonly executionTimeoutSeconds?: number;
  /** How long SSM tries to deliver the command to the instance (30 to 2592000). @default 600 */
  readonly deliveryTimeoutSeconds?: number;
  /** How long an invocation may stay unknown to GetCommandInvocation before the command counts as unknown. @default 60000 */
  readonly invocationGraceMs?: number;
  /** Refuse to read more than this much stdout from S3. @default 256 MiB */
  readonly maxOutputBytes?: number;
  /** @default 'registry-janitor' */
  readonly commentPrefix?: string;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** One parameter of the custom document: a script input the SSM Agent hands over as an environment variable. */
export interface DocumentParameter {
  /** The SSM parameter name, as in SendCommand's `Parameters`. */
  readonly name: string;
  /** The variable the SSM Agent sets from it (interpolationType ENV_VAR). */
  readonly envVar: string;
  /** The variable the host script reads. */
  readonly scriptVariable: string;
  readonly allowedPattern: string;
  /** The pattern's length limit where a regular expression without lookaheads cannot state it. */
  readonly maxChars?: number;
  readonly description: string;
  /** Absent: the parameter is required. */
  readonly default?: string;
}

/** The custom document's parameters, one per host script input, from the script's own pattern table. */
export function documentParameters(): DocumentParameter[] {
  return HOST_PARAMETERS.map((input) => {
    if (!PARAMETER_NAME.test(input.param)) {
      throw new Error(`host parameter ${input.param} is not a valid SSM parameter name`);
    }
    const required = input.param === 'action';
    const { maxLength } = input.pattern as RegExp & { maxLength?: unknown };
    return {
      name: input.param,
      envVar: `SSM_${input.param}`,
      scriptVariable: input.env,
      // Empty stands for the script's own default, which is also what an omitted optional parameter gets.
      allowedPattern: required ? input.pattern.source : `^$|${input.pattern.source}`,
      ...(typeof maxLength === 'number' ? { maxChars: maxLength } : {}),
      description: required
        ? `${input.env}: ${input.description}.`
        : `${input.env}: ${input.description}. Empty: ${input.default ?? 'chosen by the script'}.`,
      ...(required ? {} : { default: '' }),
    };
  });
}

const EXECUTION_TIMEOUT_PARAMETER = 'executionTimeout';

/**
 * The custom document's `runCommand` lines: copy each `SSM_<name>` variable into the `RJ_*` variable the script
 * reads, then the script text verbatim.
 *
 * SSM Agent 3.3.2746.0 and later export an `SSM_<name>` variable for each `interpolationType: ENV_VAR` parameter;
 * older agents export nothing, so the first line refuses to run without `SSM_action`. Every agent still replaces
 * `{{ name }}` for each parameter name anywhere in the document text, so a script containing one is refused here.
 */
export function documentCommands(): string[] {
  const script = maintenanceScript();
  const parameters = documentParameters();
  for (const name of [...parameters.map((p) => p.name), EXECUTION_TIMEOUT_PARAMETER]) {
    if (new RegExp(`{{\\s*${name}\\s*}}`).test(script)) {
      throw new Error(
        `the host script contains {{ ${name} }}, which the SSM Agent would replace with the parameter's value`,
      );
    }
  }
  return [
    `if [ -z "\${SSM_action+x}" ]; then echo "registry-janitor: SSM_action is not set: document parameters reach the script as environment variables only with SSM Agent 3.3.2746.0 or later; update the agent on this instance" >&2; exit 2; fi`,
    ...parameters.map(
      (p) => `if [ -n "\${${p.envVar}:-}" ]; then export ${p.scriptVariable}="$${p.envVar}"; fi`,
    ),
    script,
  ];
}

/**
 * The whole custom Command document (schema 2.2), ready for CfnDocument's `content`; `executionTimeoutSeconds` is
 * the default of its execution timeout parameter.
 */
export function documentContent(
  opts: { stepName?: string; executionTimeoutSeconds?: number } = {},
): Record<string, unknown> {
  const stepName = opts.stepName ?? DEFAULT_STEP_NAME;
  if (!STEP_NAME.test(stepName)) throw new Error(`step name ${JSON.stringify(stepName)} is not valid`);
  const timeout = opts.executionTimeoutSeconds ?? EXECUTION_TIMEOUT_SECONDS.default;
  if (
    !Number.isInteger(timeout) ||
    timeout < EXECUTION_TIMEOUT_SECONDS.min ||
    timeout > EXECUTION_TIMEOUT_SECONDS.max
  ) {
    throw new Error(
      `execution timeout ${timeout}: expected whole seconds from ${EXECUTION_TIMEOUT_SECONDS.min} to ${EXECUTION_TIMEOUT_SECONDS.max}`,
    );
  }
  const parameters: Record<string, unknown> = {};
  for (const p of documentParameters()) {
    parameters[p.name] = {
      type: 'String',
      description: p.description,
      allowedPattern: p.allowedPattern,
      ...(p.maxChars !== undefined ? { maxChars: p.maxChars } : {}),
      interpolationType: 'ENV_VAR',
      ...(p.default !== undefined ? { default: p.default } : {}),
    };
  }
  parameters[EXECUTION_TIMEOUT_PARAMETER] = {
    type: 'String',
    description: `Seconds the host script may run before SSM stops it (${EXECUTION_TIMEOUT_SECONDS.min} to ${EXECUTION_TIMEOUT_SECONDS.max}); a collection it stops still brings the registry back.`,
    allowedPattern: '^([5-9]|[1-9][0-9]{1,4}|1[0-6][0-9]{4}|17[01][0-9]{3}|172[0-7][0-9]{2}|172800)$',
    default: String(timeout),
  };
  return {
    schemaVersion: '2.2',
    description:
      'registry-janitor: inventory of the registry storage, garbage collection with a restart, or bringing the registry back after an interrupted collection.',
    parameters,
    mainSteps: [
      {
        action: 'aws:runShellScript',
        name: stepName,
        inputs: {
          runCommand: documentCommands(),
          timeoutSeconds: `{{ ${EXECUTION_TIMEOUT_PARAMETER} }}`,
        },
      },
    ],
  };
}

/** Single-quotes a value for sh. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The `commands` of AWS-RunShellScript: the validated assignments, then the script text verbatim. */
export function runShellScriptCommands(environment: Record<string, string>): string[] {
  const assignments = Object.entries(environment).map(([name, value]) => {
    if (!SCRIPT_VARIABLE.test(name)) throw new Error(`not a host script variable: ${JSON.stringify(name)}`);
    return `export ${name}=${shellQuote(value)}`;
  });
  return [...assignments, maintenanceScript()];
}

/** How an invocation ended; a reason when SSM, not the script, decided it. */
interface Outcome {
  readonly reason?: string;
  /** SSM killed the script's process group (execution timeout or cancel). */
  readonly interrupted?: true;
}

const normalize = (status: string | undefined): string => (status ?? '').replaceAll(' ', '').toLowerCase();

function describeStatus(inv: GetCommandInvocationCommandOutput): string {
  const details = inv.StatusDetails && inv.StatusDetails !== inv.Status ? ` (${inv.StatusDetails})` : '';
  return `${inv.Status ?? 'unknown'}${details}`;
}

export class SsmRunner implements HostRunner {
  private readonly ssm: SSMClient;
  private readonly s3: S3Client | undefined;
  private readonly instanceId: string;
  private readonly documentName: string | undefined;
  private readonly stepName: string;
  private readonly outputBucket: string | undefined;
  private readonly outputPrefix: string | undefined;
  private readonly deadlineMs: number;
  private readonly pollIntervalMs: number;
  private readonly maxPollIntervalMs: number;
  private readonly executionTimeoutSeconds: number | undefined;
  private readonly deliveryTimeoutSeconds: number;
  private readonly invocationGraceMs: number;
  private readonly maxOutputBytes: number;
  private readonly commentPrefix: string;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(opts: SsmRunnerOptions) {
    const problems: string[] = [];
    const bad = (what: string, value: unknown, expected: string) =>
      problems.push(`${what}: expected ${expected}, got ${JSON.stringify(value)}`);
    if (!INSTANCE_ID.test(opts.instanceId)) {
      bad('instanceId', opts.instanceId, 'an EC2 instance id such as i-0123456789abcdef0');
    }
    if (opts.documentName !== undefined) {
      if (!SSM_DOCUMENT.test(opts.documentName)) {
        bad('documentName', opts.documentName, 'an SSM document name or ARN');
      } else if (opts.documentName === RUN_SHELL_SCRIPT) {
        problems.push(
          `documentName: leave it unset to use ${RUN_SHELL_SCRIPT}; it names the registry-janitor document`,
        );
      }
    }
    if (opts.stepName !== undefined && !STEP_NAME.test(opts.stepName)) {
      bad('stepName', opts.stepName, 'a document step name');
    }
    if (opts.outputBucket !== undefined) {
      if (!S3_BUCKET.test(opts.outputBucket)) bad('outputBucket', opts.outputBucket, 'an S3 bucket name');
      if (!opts.s3) problems.push('s3: an S3 client is needed to read the full output from outputBucket');
    }
    if (opts.outputPrefix !== undefined) {
      if (opts.outputBucket === undefined) problems.push('outputPrefix: only with outputBucket');
      if (!KEY_PREFIX.test(opts.outputPrefix) || opts.outputPrefix.startsWith('/')) {
        bad('outputPrefix', opts.outputPrefix, 'an S3 key prefix such as registry-janitor/ssm');
      }
    }
    if (!Number.isFinite(opts.deadlineMs) || opts.deadlineMs < 0) {
      bad('deadlineMs', opts.deadlineMs, 'milliseconds ≥ 0');
    }
    const positive = (name: keyof SsmRunnerOptions, value: number | undefined) => {
      if (value !== undefined && (!Number.isFinite(value) || value <= 0)) {
        bad(name, value, 'a positive number');
      }
    };
    positive('pollIntervalMs', opts.pollIntervalMs);
    positive('maxPollIntervalMs', opts.maxPollIntervalMs);
    positive('invocationGraceMs', opts.invocationGraceMs);
    positive('maxOutputBytes', opts.maxOutputBytes);
    const whole = (name: keyof SsmRunnerOptions, value: number | undefined, min: number, max: number) => {
      if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) {
        bad(name, value, `whole seconds from ${min} to ${max}`);
      }
    };
    whole(
      'executionTimeoutSeconds',
      opts.executionTimeoutSeconds,
      EXECUTION_TIMEOUT_SECONDS.min,
      EXECUTION_TIMEOUT_SECONDS.max,
    );
    whole('deliveryTimeoutSeconds', opts.deliveryTimeoutSeconds, 30, 2_592_000);
    if (problems.length > 0) {
      throw new SsmRunnerError(
        'RJ_SSM_INVALID_OPTIONS',
        `invalid SSM runner options:\n  ${problems.join('\n  ')}`,
      );
    }

    this.ssm = opts.ssm;
    this.s3 = opts.s3;
    this.instanceId = opts.instanceId;
    this.documentName = opts.documentName;
    this.stepName = opts.stepName ?? DEFAULT_STEP_NAME;
    this.outputBucket = opts.outputBucket;
    this.outputPrefix = opts.outputPrefix;
    this.deadlineMs = opts.deadlineMs;
    this.pollIntervalMs = opts.pollIntervalMs ?? 2_000;
    this.maxPollIntervalMs = Math.max(opts.maxPollIntervalMs ?? 10_000, this.pollIntervalMs);
    this.executionTimeoutSeconds = opts.executionTimeoutSeconds;
    this.deliveryTimeoutSeconds = opts.deliveryTimeoutSeconds ?? 600;
    this.invocationGraceMs = opts.invocationGraceMs ?? 60_000;
    this.maxOutputBytes = opts.maxOutputBytes ?? 256 * 1024 * 1024;
    this.commentPrefix = opts.commentPrefix ?? 'registry-janitor';
    this.sleep = opts.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.now = opts.now ?? Date.now;
  }

  /** The SendCommand request for an action; the parameters are validated first and throw when invalid. */
  sendCommandInput(action: HostAction, params: HostParams): SendCommandCommandInput {
    const environment = hostEnvironment(action, params);
    const parameters: Record<string, string[]> = this.documentName
      ? this.documentParameterValues(environment)
      : { commands: runShellScriptCommands(environment) };
    if (this.executionTimeoutSeconds !== undefined) {
      parameters[EXECUTION_TIMEOUT_PARAMETER] = [String(this.executionTimeoutSeconds)];
    }
    return {
      InstanceIds: [this.instanceId],
      DocumentName: this.documentName ?? RUN_SHELL_SCRIPT,
      Comment: `${this.commentPrefix} ${action} on ${this.instanceId}`.slice(0, 100),
      TimeoutSeconds: this.deliveryTimeoutSeconds,
      Parameters: parameters,
      ...(this.outputBucket !== undefined ? { OutputS3BucketName: this.outputBucket } : {}),
      ...(this.outputPrefix !== undefined ? { OutputS3KeyPrefix: this.outputPrefix } : {}),
    };
  }

  async run(action: HostAction, params: HostParams): Promise<SsmHostRun> {
    const input = this.sendCommandInput(action, params);
    const deadline = this.now() + this.deadlineMs;
    let commandId: string | undefined;
    try {
      const sent = await this.ssm.send(new SendCommandCommand(input));
      commandId = sent.Command?.CommandId;
    } catch (err) {
      throw this.sendError(err);
    }
    if (!commandId) throw new SsmRunnerError('RJ_SSM_SEND', 'SendCommand answered without a command id');
    return this.poll(commandId, deadline, { waitFirst: true, graceMs: Number.POSITIVE_INFINITY });
  }

  /** Picks up a command an earlier run() left `running`. */
  async resume(commandId: string): Promise<SsmHostRun> {
    if (!SSM_COMMAND_ID.test(commandId)) {
      throw new SsmRunnerError(
        'RJ_SSM_UNKNOWN_COMMAND',
        `resume: expected an SSM command id such as 0b5f2c1e-1111-2222-3333-444455556666, got ${JSON.stringify(commandId)}`,
      );
    }
    return this.poll(commandId, this.now() + this.deadlineMs, {
      waitFirst: false,
      graceMs: this.invocationGraceMs,
    });
  }

  private documentParameterValues(environment: Record<string, string>): Record<string, string[]> {
    const byVariable = new Map(documentParameters().map((p) => [p.scriptVariable, p.name]));
    const values: Record<string, string[]> = {};
    for (const [variable, value] of Object.entries(environment)) {
      const name = byVariable.get(variable);
      if (name === undefined) throw new Error(`host script variable ${variable} has no document parameter`);
      values[name] = [value];
    }
    return values;
  }

  /**
   * Polls until the invocation ends or the deadline passes. An invocation SSM does not know yet counts as pending:
   * after SendCommand for as long as the deadline allows, on resume for `graceMs`.
   */
  private async poll(
    commandId: string,
    deadline: number,
    { waitFirst, graceMs }: { waitFirst: boolean; graceMs: number },
  ): Promise<SsmHostRun> {
    let interval = this.pollIntervalMs;
    let firstMissing: number | undefined;
    if (waitFirst) {
      await this.sleep(Math.max(0, Math.min(interval, deadline - this.now())));
      interval = this.nextInterval(interval);
    }
    for (;;) {
      const invocation = await this.invocation(commandId);
      if (invocation) {
        const outcome = this.outcome(invocation);
        if (outcome) return this.finished(commandId, invocation, outcome, deadline);
      } else {
        firstMissing ??= this.now();
        if (this.now() - firstMissing > graceMs) {
          throw new SsmRunnerError(
            'RJ_SSM_UNKNOWN_COMMAND',
            `SSM knows no invocation of command ${commandId} on ${this.instanceId}: the id is wrong, belongs to another instance, or has expired from SSM's command history`,
          );
        }
      }
      const remaining = deadline - this.now();
      if (remaining <= 0) {
        return {
          state: 'running',
          commandId,
          ...(invocation ? { ssmStatus: describeStatus(invocation) } : {}),
        };
      }
      await this.sleep(Math.min(interval, remaining));
      interval = this.nextInterval(interval);
    }
  }

  private nextInterval(interval: number): number {
    return Math.min(Math.round(interval * 1.5), this.maxPollIntervalMs);
  }

  private async invocation(commandId: string): Promise<GetCommandInvocationCommandOutput | undefined> {
    try {
      return await this.ssm.send(
        new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: this.instanceId }),
      );
    } catch (err) {
      if (errorName(err) === 'InvocationDoesNotExist') return undefined;
      throw this.pollError(commandId, err);
    }
  }

  /** Undefined while the invocation is still pending or running. */
  private outcome(inv: GetCommandInvocationCommandOutput): Outcome | undefined {
    const details = normalize(inv.StatusDetails);
    switch (inv.Status) {
      case 'Pending':
      case 'InProgress':
      case 'Delayed':
        return undefined;
      case 'Success':
        return {};
      case 'Cancelled':
        return {
          reason:
            'the command was cancelled before the host script finished; a collection still brings the registry back by itself',
          interrupted: true,
        };
      case 'Cancelling':
        return { reason: 'the command is being cancelled; the host script did not finish' };
      case 'TimedOut':
        if (details === 'deliverytimedout') {
          return {
            reason: `SSM could not deliver the command to ${this.instanceId} within ${this.deliveryTimeoutSeconds} s: is the instance running and its SSM Agent online?`,
          };
        }
        return {
          reason: `the host script ran longer than its execution timeout${this.executionTimeoutSeconds ? ` (${this.executionTimeoutSeconds} s)` : ''} and SSM stopped it; a collection still brings the registry back by itself: raise executionTimeoutSeconds, and see the log on the host`,
          interrupted: true,
        };
      case 'Failed':
        return this.failureReason(details);
      default:
        return { reason: `SSM reported an unexpected status ${describeStatus(inv)} for the command` };
    }
  }

  private failureReason(details: string): Outcome {
    switch (details) {
      case 'undeliverable':
        return {
          reason: `SSM could not deliver the command to ${this.instanceId}: the instance does not exist, is not responding, or its SSM Agent is not registered`,
        };
      case 'terminated':
        return {
          reason: 'SSM terminated the invocation because its command exceeded the allowed number of errors',
        };
      case 'invalidplatform':
        return {
          reason: `the document does not run on the platform of ${this.instanceId}: the host script needs a Linux instance`,
        };
      case 'accessdenied':
        return {
          reason: `SSM denied running the document on ${this.instanceId}: check that the document is shared with this account and the instance is allowed to run it`,
        };
      default:
        return {};
    }
  }

  private async finished(
    commandId: string,
    inv: GetCommandInvocationCommandOutput,
    outcome: Outcome,
    deadline: number,
  ): Promise<SsmHostRun> {
    const base = {
      state: 'finished' as const,
      commandId,
      ssmStatus: describeStatus(inv),
      ...(inv.ResponseCode !== undefined && inv.ResponseCode >= 0 ? { exitCode: inv.ResponseCode } : {}),
    };
    let stdout = inv.StandardOutputContent ?? '';
    let parsed = parseHostOutput(stdout);
    let outputProblem: string | undefined;
    if (!parsed.summary && looksTruncated(stdout)) {
      if (this.outputBucket === undefined) {
        outputProblem = `SSM kept only the first ${SSM_STDOUT_LIMIT.toLocaleString('en')} characters of the output and the summary line is lost: configure an output bucket (outputBucket) so the runner can read the complete output from S3; an inventory of a big registry always needs it`;
      } else {
        const full = await this.fullStdout(commandId, inv, deadline);
        if (typeof full === 'string') {
          stdout = full;
          parsed = parseHostOutput(stdout);
        } else {
          outputProblem = full.problem;
        }
      }
    }
    const complete = outputProblem === undefined;
    let reason = outcome.reason ?? outputProblem;
    if (reason === undefined && !parsed.summary) {
      const stderr = (inv.StandardErrorContent ?? '').trim();
      reason = `${parsed.problem ?? 'the host script printed no summary line'}${stderr ? `; its stderr ends with: ${stderr.slice(-500)}` : ''}`;
    } else if (outcome.reason && outputProblem) {
      reason = `${outcome.reason}; ${outputProblem}`;
    }
    return {
      ...base,
      ...(parsed.summary ? { summary: parsed.summary } : {}),
      ...(complete && parsed.summary ? { output: parsed.output } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(outcome.interrupted ? { interrupted: true as const } : {}),
    };
  }

  /** The S3 key SSM writes the step's stdout to: `<prefix>/<command>/<instance>/awsrunShellScript/<step>/stdout`. */
  stdoutKey(commandId: string, documentName: string | undefined = this.documentName): string {
    const step =
      documentName === undefined || documentName === RUN_SHELL_SCRIPT ? '0.awsrunShellScript' : this.stepName;
    return posix.join(
      this.outputPrefix ?? '',
      commandId,
      this.instanceId,
      'awsrunShellScript',
      step,
      'stdout',
    );
  }

  private async fullStdout(
    commandId: string,
    inv: GetCommandInvocationCommandOutput,
    deadline: number,
  ): Promise<string | { problem: string }> {
    const bucket = this.outputBucket as string;
    const s3 = this.s3 as S3Client;
    const documentName =
      inv.DocumentName && inv.DocumentName !== RUN_SHELL_SCRIPT ? inv.DocumentName : undefined;
    const key =
      keyFromUrl(inv.StandardOutputUrl, bucket, commandId) ??
      this.stdoutKey(commandId, inv.DocumentName ? documentName : this.documentName);
    const where = `s3://${bucket}/${key}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return await readText(answer.Body, this.maxOutputBytes, where);
      } catch (err) {
        const name = errorName(err);
        // The agent uploads the output after reporting the status, so the object can lag behind.
        if (name === 'NoSuchKey' && attempt < S3_ATTEMPTS && this.now() < deadline) {
          await this.sleep(Math.min(this.pollIntervalMs, Math.max(0, deadline - this.now())));
          continue;
        }
        if (err instanceof OutputTooLargeError) return { problem: err.message };
        if (name === 'NoSuchKey') {
          return {
            problem: `the complete output is not at ${where}: the instance profile needs s3:PutObject on arn:aws:s3:::${bucket}/${this.outputPrefix ?? ''}*`,
          };
        }
        if (name === 'AccessDenied' || name === 'AccessDeniedException') {
          return {
            problem: `reading ${where} was denied: the runner's role needs s3:GetObject on arn:aws:s3:::${bucket}/${this.outputPrefix ?? ''}*`,
          };
        }
        return { problem: `could not read the complete output from ${where}: ${name}: ${errorMessage(err)}` };
      }
    }
  }

  private sendError(err: unknown): SsmRunnerError {
    const name = errorName(err);
    const document = this.documentName ?? RUN_SHELL_SCRIPT;
    const documentArn = document.startsWith('arn:')
      ? document
      : `arn:aws:ssm:<region>:${this.documentName ? '<account>' : ''}:document/${document}`;
    const detail = `${name}: ${errorMessage(err)}`;
    switch (name) {
      case 'AccessDeniedException': {
        const grants = [
          `the document ${document} (${documentArn})`,
          `the instance arn:aws:ec2:<region>:<account>:instance/${this.instanceId}`,
          ...(this.outputBucket !== undefined
            ? [
                `the output bucket arn:aws:s3:::${this.outputBucket}, which IAM checks because the command writes its output there`,
              ]
            : []),
        ];
        return new SsmRunnerError(
          'RJ_SSM_ACCESS_DENIED',
          `SendCommand was denied (${detail}): the role needs ssm:SendCommand on all of ${grants.join('; ')}. One of these grants is missing, or a permissions boundary or service control policy denies it`,
          { cause: err },
        );
      }
      case 'InvalidInstanceId':
        return new SsmRunnerError(
          'RJ_SSM_INSTANCE',
          `SSM cannot run commands on ${this.instanceId} (${detail}): the instance is not a managed node in this region, is not running, or its SSM Agent is not running or lacks the AmazonSSMManagedInstanceCore permissions`,
          { cause: err },
        );
      case 'UnsupportedPlatformType':
        return new SsmRunnerError(
          'RJ_SSM_INSTANCE',
          `${this.instanceId} is not a Linux instance (${detail}): the host script needs Linux`,
          { cause: err },
        );
      case 'InvalidDocument':
      case 'InvalidDocumentVersion':
        return new SsmRunnerError(
          'RJ_SSM_DOCUMENT',
          `the document ${document} does not exist in this account and region (${detail}): deploy the registry-janitor stack there, or fix the document name`,
          { cause: err },
        );
      case 'InvalidParameters':
        return new SsmRunnerError(
          'RJ_SSM_PARAMETERS',
          `the document ${document} rejected the parameters (${detail}): redeploy the stack so the document matches this version of registry-janitor`,
          { cause: err },
        );
      case 'InvalidOutputFolder':
        return new SsmRunnerError(
          'RJ_SSM_OUTPUT_FOLDER',
          `SSM rejected the output location s3://${this.outputBucket ?? ''}/${this.outputPrefix ?? ''} (${detail}): check that the bucket exists in this region`,
          { cause: err },
        );
      default:
        return new SsmRunnerError('RJ_SSM_SEND', `SendCommand to ${this.instanceId} failed: ${detail}`, {
          cause: err,
        });
    }
  }

  private pollError(commandId: string, err: unknown): SsmRunnerError {
    const name = errorName(err);
    const detail = `${name}: ${errorMessage(err)}`;
    if (name === 'AccessDeniedException') {
      return new SsmRunnerError(
        'RJ_SSM_ACCESS_DENIED',
        `GetCommandInvocation was denied (${detail}): the role needs ssm:GetCommandInvocation`,
        { cause: err },
      );
    }
    if (name === 'InvalidCommandId' || name === 'InvalidInstanceId') {
      return new SsmRunnerError(
        'RJ_SSM_UNKNOWN_COMMAND',
        `SSM knows no command ${commandId} on ${this.instanceId} (${detail})`,
        { cause: err },
      );
    }
    return new SsmRunnerError(
      'RJ_SSM_POLL',
      `GetCommandInvocation for command ${commandId} failed: ${detail}`,
      {
        cause: err,
      },
    );
  }
}

function looksTruncated(stdout: string): boolean {
  if (stdout.endsWith(TRUNCATED_SUFFIX)) return true;
  const threshold = SSM_STDOUT_LIMIT - TRUNCATION_SLACK;
  return stdout.length >= threshold || Buffer.byteLength(stdout, 'utf8') >= threshold;
}

/** The object key in a StandardOutputUrl (path-style or virtual-hosted), when it is in the bucket and for the command. */
function keyFromUrl(url: string | undefined, bucket: string, commandId: string): string | undefined {
  if (!url) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  let path: string | undefined;
  if (parsed.hostname.startsWith(`${bucket}.`)) path = parsed.pathname.slice(1);
  else if (parsed.pathname.startsWith(`/${bucket}/`)) path = parsed.pathname.slice(bucket.length + 2);
  if (path === undefined) return undefined;
  let key: string;
  try {
    key = decodeURIComponent(path);
  } catch {
    return undefined;
  }
  return key.includes(`${commandId}/`) && key.endsWith('/stdout') ? key : undefined;
}

class OutputTooLargeError extends Error {
  override readonly name = 'OutputTooLargeError';
}

async function readText(body: unknown, maxBytes: number, where: string): Promise<string> {
  if (body === undefined || body === null) return '';
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let bytes = 0;
  const add = (chunk: Uint8Array | string): void => {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    bytes += data.byteLength;
    if (bytes > maxBytes) {
      throw new OutputTooLargeError(
        `the output at ${where} is larger than ${maxBytes} bytes; it was not read`,
      );
    }
    text += decoder.decode(data, { stream: true });
  };
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    const stream = body as AsyncIterable<Uint8Array | string> & { destroy?: () => void };
    try {
      for await (const chunk of stream) add(chunk);
    } catch (err) {
      stream.destroy?.();
      throw err;
    }
  } else if (typeof (body as { transformToByteArray?: unknown }).transformToByteArray === 'function') {
    add(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
  } else {
    throw new Error(`the body of ${where} is not a stream`);
  }
  return text + decoder.decode();
}

function errorName(err: unknown): string {
  if (err && typeof err === 'object') {
    const named = err as { name?: unknown; Code?: unknown };
    if (typeof named.name === 'string' && named.name !== 'Error') return named.name;
    if (typeof named.Code === 'string') return named.Code;
  }
  return err instanceof Error ? err.name : 'Error';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
