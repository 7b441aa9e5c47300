import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import {
  GetObjectCommand,
  type GetObjectCommandOutput,
  NoSuchKey,
  S3Client,
  type S3ClientResolvedConfig,
  type ServiceInputTypes as S3Input,
  type ServiceOutputTypes as S3Output,
} from '@aws-sdk/client-s3';
import {
  type CommandInvocationStatus,
  GetCommandInvocationCommand,
  type GetCommandInvocationCommandInput,
  type GetCommandInvocationCommandOutput,
  InvalidDocument,
  InvalidInstanceId,
  InvalidParameters,
  InvocationDoesNotExist,
  SendCommandCommand,
  type SendCommandCommandInput,
  SSMClient,
  type SSMClientResolvedConfig,
  type ServiceInputTypes as SsmInput,
  type ServiceOutputTypes as SsmOutput,
} from '@aws-sdk/client-ssm';
import { type AwsStub, mockClient } from 'aws-sdk-client-mock';

/** GetCommandInvocation keeps the first 24,000 characters of stdout and 8,000 of stderr. */
export const STDOUT_CONTENT_LIMIT = 24_000;
export const STDERR_CONTENT_LIMIT = 8_000;

const REGION = 'eu-west-1';
const RUN_SHELL_SCRIPT = 'AWS-RunShellScript';

/** A custom Command document as the fake needs it: its parameters and its step's runCommand lines. */
export interface FakeDocument {
  readonly stepName: string;
  readonly parameters: readonly { name: string; allowedPattern: string; default?: string }[];
  readonly commands: readonly string[];
  /** Parameters the agent does not hand to the script as environment variables (e.g. executionTimeout). */
  readonly plainParameters?: readonly { name: string; allowedPattern: string; default?: string }[];
}

export interface SsmFakeOptions {
  /** The managed instance; SendCommand to any other id fails with InvalidInstanceId. */
  readonly instanceId: string;
  /** The environment the commands run with, e.g. the docker stand-in's. */
  readonly env: Record<string, string | undefined>;
  readonly documents?: Record<string, FakeDocument>;
  /** How many GetCommandInvocation calls answer InvocationDoesNotExist after SendCommand. @default 1 */
  readonly invisiblePolls?: number;
  /** The shell the agent runs the script file with (`sh -c <file>`, so `sh` is dash on Debian and Ubuntu). @default 'sh' */
  readonly shell?: string;
}

export interface FakeCommand {
  readonly commandId: string;
  readonly input: SendCommandCommandInput;
  /** The script file the agent would write: the step's commands joined by newlines. */
  readonly script: string;
  /** The SSM_<name> variables the agent set. */
  readonly ssmEnvironment: Record<string, string>;
  status: CommandInvocationStatus;
  statusDetails: string;
  exitCode?: number;
  stdout: string;
  stderr: string;
}

export interface SsmFake {
  readonly ssm: SSMClient;
  readonly s3: S3Client;
  readonly ssmMock: AwsStub<SsmInput, SsmOutput, SSMClientResolvedConfig>;
  readonly s3Mock: AwsStub<S3Input, S3Output, S3ClientResolvedConfig>;
  /** Objects the fake agent uploaded, by `bucket/key`. */
  readonly objects: Map<string, string>;
  commands(): readonly FakeCommand[];
  /** Resolves once no command is running. */
  idle(): Promise<void>;
  /**
   * Stops a running command as the SSM Agent does when its execution timeout passes or it is cancelled: SIGKILL to
   * the script's whole process group, then that status. Resolves when the script is gone.
   */
  interrupt(commandId: string, status: 'TimedOut' | 'Cancelled'): Promise<void>;
  /** A sleep for the runner under test: it waits for the running commands instead of for time. */
  sleep(ms: number): Promise<void>;
  close(): Promise<void>;
}

interface DocumentParameterContent {
  readonly allowedPattern?: string;
  readonly default?: string;
  readonly interpolationType?: string;
}

/** A schema 2.2 Command document with one `aws:runShellScript` step, as the fake runs it. */
export function fakeDocument(content: Record<string, unknown>): FakeDocument {
  const parameters = (content.parameters ?? {}) as Record<string, DocumentParameterContent>;
  const steps = content.mainSteps as { action: string; name: string; inputs: { runCommand: string[] } }[];
  const step = steps[0];
  if (steps.length !== 1 || step?.action !== 'aws:runShellScript') {
    throw new Error('the fake runs documents with one aws:runShellScript step');
  }
  const declared = Object.entries(parameters).map(([name, p]) => ({
    name,
    allowedPattern: p.allowedPattern ?? '',
    ...(p.default !== undefined ? { default: p.default } : {}),
    env: p.interpolationType === 'ENV_VAR',
  }));
  const strip = ({ env: _, ...p }: (typeof declared)[number]) => p;
  return {
    stepName: step.name,
    commands: step.inputs.runCommand,
    parameters: declared.filter((p) => p.env).map(strip),
    plainParameters: declared.filter((p) => !p.env).map(strip),
  };
}

/** The S3 key the SSM Agent uploads a step's stdout to. */
export function stdoutObjectKey(
  prefix: string | undefined,
  commandId: string,
  instanceId: string,
  step: string,
): string {
  return posix.join(prefix ?? '', commandId, instanceId, 'awsrunShellScript', step, 'stdout');
}

/**
 * An SSM client (and an S3 client for the output bucket) whose SendCommand runs the command on this machine the
 * way the SSM Agent's aws:runShellScript does: the step's commands joined by newlines into `_script.sh`, run with
 * `sh -c <file>`; in a custom document `{{ name }}` replaced by parameter values and ENV_VAR parameters exported
 * as SSM_<name>; stdout kept whole in the output bucket and cut to 24,000 characters for GetCommandInvocation.
 */
export async function createSsmFake(opts: SsmFakeOptions): Promise<SsmFake> {
  const dir = await mkdtemp(join(tmpdir(), 'ssm-fake-'));
  const ssm = new SSMClient({
    region: REGION,
    credentials: { accessKeyId: 'fake', secretAccessKey: 'fake' },
  });
  const s3 = new S3Client({ region: REGION, credentials: { accessKeyId: 'fake', secretAccessKey: 'fake' } });
  const ssmMock = mockClient(ssm);
  const s3Mock = mockClient(s3);
  const objects = new Map<string, string>();
  const commands = new Map<string, FakeCommand & { polls: number }>();
  const running = new Set<Promise<void>>();
  const stoppers = new Map<string, (status: 'TimedOut' | 'Cancelled') => void>();
  const executions = new Map<string, Promise<void>>();
  const invisiblePolls = opts.invisiblePolls ?? 1;
  const shell = opts.shell ?? 'sh';

  const fail = (
    Exception: new (opts: { message: string; $metadata: object }) => Error,
    message: string,
  ): never => {
    throw new Exception({ message, $metadata: {} });
  };

  const prepare = (
    input: SendCommandCommandInput,
  ): { script: string; ssmEnvironment: Record<string, string>; step: string; timeoutSeconds: number } => {
    const parameters = input.Parameters ?? {};
    const single = (name: string): string | undefined => {
      const values = parameters[name];
      if (values === undefined) return undefined;
      if (values.length !== 1 || values[0] === undefined) fail(InvalidParameters, `${name} takes one value`);
      return values[0];
    };
    if (input.DocumentName === RUN_SHELL_SCRIPT) {
      for (const name of Object.keys(parameters)) {
        if (!['commands', 'executionTimeout', 'workingDirectory'].includes(name)) {
          fail(InvalidParameters, `${RUN_SHELL_SCRIPT} has no parameter ${name}`);
        }
      }
      const lines = parameters.commands;
      if (!lines || lines.length === 0) fail(InvalidParameters, 'commands is required');
      return {
        script: `${(lines as string[]).join('\n')}\n`,
        ssmEnvironment: {},
        step: '0.awsrunShellScript',
        timeoutSeconds: Number(single('executionTimeout') ?? '3600'),
      };
    }
    const document = input.DocumentName ? opts.documents?.[input.DocumentName] : undefined;
    if (!document) return fail(InvalidDocument, `document ${input.DocumentName} does not exist`);
    const declared = [...document.parameters, ...(document.plainParameters ?? [])];
    for (const name of Object.keys(parameters)) {
      if (!declared.some((p) => p.name === name))
        fail(InvalidParameters, `document has no parameter ${name}`);
    }
    const values = new Map<string, string>();
    for (const p of declared) {
      const value = single(p.name) ?? p.default;
      if (value === undefined) fail(InvalidParameters, `${p.name} is required`);
      if (!new RegExp(p.allowedPattern).test(value as string)) {
        fail(InvalidParameters, `${p.name} does not match its allowedPattern ${p.allowedPattern}`);
      }
      values.set(p.name, value as string);
    }
    const ssmEnvironment: Record<string, string> = {};
    for (const p of document.parameters) ssmEnvironment[`SSM_${p.name}`] = values.get(p.name) ?? '';
    let text = document.commands.join('\n');
    for (const [name, value] of values)
      text = text.replace(new RegExp(`{{\\s*${name}\\s*}}`, 'g'), () => value);
    return {
      script: `${text}\n`,
      ssmEnvironment,
      step: document.stepName,
      timeoutSeconds: Number(values.get('executionTimeout') ?? '3600'),
    };
  };

  const execute = async (command: FakeCommand, timeoutSeconds: number, step: string): Promise<void> => {
    await mkdir(join(dir, command.commandId));
    const file = join(dir, command.commandId, '_script.sh');
    await writeFile(file, command.script, { mode: 0o700 });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let stoppedAs: 'TimedOut' | 'Cancelled' | undefined;
    const exitCode = await new Promise<number>((resolve) => {
      // The agent starts the script in a process group of its own and kills that whole group.
      const child = spawn(shell, ['-c', file], {
        cwd: dir,
        env: { ...opts.env, ...command.ssmEnvironment },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
      const stop = (status: 'TimedOut' | 'Cancelled'): void => {
        stoppedAs ??= status;
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // the group has ended already
        }
      };
      stoppers.set(command.commandId, stop);
      const timer = setTimeout(() => stop('TimedOut'), timeoutSeconds * 1000);
      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
      child.once('error', (error) => {
        clearTimeout(timer);
        err.push(Buffer.from(String(error)));
        resolve(1);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        resolve(code ?? (signal ? 128 : 1));
      });
    });
    command.stdout = Buffer.concat(out).toString('utf8');
    command.stderr = Buffer.concat(err).toString('utf8');
    command.exitCode = stoppedAs ? -1 : exitCode;
    if (stoppedAs === 'TimedOut') {
      command.status = 'TimedOut';
      command.statusDetails = 'Execution Timed Out';
    } else if (stoppedAs === 'Cancelled') {
      command.status = 'Cancelled';
      command.statusDetails = 'Cancelled';
    } else {
      command.status = exitCode === 0 ? 'Success' : 'Failed';
      command.statusDetails = command.status;
    }
    const bucket = command.input.OutputS3BucketName;
    if (bucket && command.stdout !== '') {
      const key = stdoutObjectKey(command.input.OutputS3KeyPrefix, command.commandId, opts.instanceId, step);
      objects.set(`${bucket}/${key}`, command.stdout);
    }
  };

  ssmMock.on(SendCommandCommand).callsFake(async (input: SendCommandCommandInput) => {
    if (input.InstanceIds?.length !== 1 || input.InstanceIds[0] !== opts.instanceId) {
      fail(InvalidInstanceId, `instances ${JSON.stringify(input.InstanceIds)} are not managed nodes`);
    }
    const prepared = prepare(input);
    const command: FakeCommand & { polls: number } = {
      commandId: randomUUID(),
      input,
      script: prepared.script,
      ssmEnvironment: prepared.ssmEnvironment,
      status: 'InProgress',
      statusDetails: 'In Progress',
      stdout: '',
      stderr: '',
      polls: 0,
    };
    commands.set(command.commandId, command);
    const done = execute(command, prepared.timeoutSeconds, prepared.step).finally(() => {
      running.delete(done);
      stoppers.delete(command.commandId);
    });
    running.add(done);
    executions.set(command.commandId, done);
    return {
      Command: {
        CommandId: command.commandId,
        DocumentName: input.DocumentName,
        InstanceIds: input.InstanceIds,
        Status: 'Pending',
      },
    };
  });

  ssmMock
    .on(GetCommandInvocationCommand)
    .callsFake(
      async (input: GetCommandInvocationCommandInput): Promise<GetCommandInvocationCommandOutput> => {
        const command = commands.get(input.CommandId ?? '');
        if (!command || input.InstanceId !== opts.instanceId || command.polls++ < invisiblePolls) {
          fail(InvocationDoesNotExist, 'invocation does not exist');
        }
        const found = command as FakeCommand;
        const finished = found.status !== 'InProgress';
        const document = found.input.DocumentName;
        const step =
          document === RUN_SHELL_SCRIPT ? '0.awsrunShellScript' : opts.documents?.[document ?? '']?.stepName;
        const bucket = found.input.OutputS3BucketName;
        const url =
          bucket && finished && found.stdout !== '' && step
            ? `https://s3.${REGION}.amazonaws.com/${bucket}/${stdoutObjectKey(found.input.OutputS3KeyPrefix, found.commandId, opts.instanceId, step)}`
            : '';
        return {
          $metadata: {},
          CommandId: found.commandId,
          InstanceId: opts.instanceId,
          DocumentName: document,
          PluginName: document === RUN_SHELL_SCRIPT ? 'aws:runShellScript' : step,
          Status: found.status,
          StatusDetails: found.statusDetails,
          ResponseCode: finished ? found.exitCode : -1,
          StandardOutputContent: finished ? found.stdout.slice(0, STDOUT_CONTENT_LIMIT) : '',
          StandardErrorContent: finished ? found.stderr.slice(0, STDERR_CONTENT_LIMIT) : '',
          StandardOutputUrl: url,
        };
      },
    );

  s3Mock.on(GetObjectCommand).callsFake(async (input: { Bucket?: string; Key?: string }) => {
    const content = objects.get(`${input.Bucket}/${input.Key}`);
    if (content === undefined)
      throw new NoSuchKey({ message: 'The specified key does not exist.', $metadata: {} });
    const bytes = Buffer.from(content);
    return {
      $metadata: {},
      ContentLength: bytes.byteLength,
      Body: Readable.from([
        bytes.subarray(0, 1000),
        bytes.subarray(1000),
      ]) as unknown as GetObjectCommandOutput['Body'],
    };
  });

  const idle = async (): Promise<void> => {
    while (running.size > 0) await Promise.all(running);
  };

  return {
    ssm,
    s3,
    ssmMock,
    s3Mock,
    objects,
    commands: () => [...commands.values()],
    idle,
    async interrupt(commandId, status) {
      const stop = stoppers.get(commandId);
      if (!stop) throw new Error(`command ${commandId} is not running`);
      stop(status);
      await executions.get(commandId);
    },
    sleep: () => idle(),
    async close() {
      await idle();
      ssmMock.restore();
      s3Mock.restore();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
