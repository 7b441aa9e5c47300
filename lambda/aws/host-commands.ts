import type { S3Client } from '@aws-sdk/client-s3';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { RUN_SHELL_SCRIPT, SsmRunner, type SsmRunnerOptions } from '../host/ssm-runner.js';
import type { HostAction, HostCommands, HostParams, HostRun } from '../ports.js';

/** SSM writes each command's full output under this prefix of the output bucket. */
export const SSM_OUTPUT_PREFIX = 'ssm';

export type RunnerTuning = Pick<SsmRunnerOptions, 'sleep' | 'now' | 'pollIntervalMs' | 'maxPollIntervalMs'>;

export interface SsmHostCommandsOptions {
  readonly ssm: SSMClient;
  readonly s3?: S3Client;
  readonly instanceId: string;
  readonly documentName?: string;
  readonly outputBucket?: string;
  /** How long SSM lets the script run. @default the document's */
  readonly executionTimeoutSeconds?: number;
  /** How long a command for the action may be waited for, decided when it starts. */
  readonly budgetMs: (action: HostAction) => number;
  readonly tuning?: RunnerTuning;
}

/** The host script through SSM Run Command, each command waited for no longer than its budget allows. */
export class SsmHostCommands implements HostCommands {
  readonly documentName: string;

  constructor(private readonly options: SsmHostCommandsOptions) {
    this.documentName = options.documentName ?? RUN_SHELL_SCRIPT;
  }

  private runner(deadlineMs: number): SsmRunner {
    const { ssm, s3, instanceId, documentName, outputBucket, executionTimeoutSeconds, tuning } = this.options;
    return new SsmRunner({
      ssm,
      instanceId,
      deadlineMs: Math.max(0, Math.floor(deadlineMs)),
      ...(executionTimeoutSeconds !== undefined ? { executionTimeoutSeconds } : {}),
      ...(documentName !== undefined ? { documentName } : {}),
      ...(outputBucket !== undefined && s3 !== undefined
        ? { outputBucket, outputPrefix: SSM_OUTPUT_PREFIX, s3 }
        : {}),
      ...tuning,
    });
  }

  run(action: HostAction, params: HostParams): Promise<HostRun> {
    return this.runner(this.options.budgetMs(action)).run(action, params);
  }

  resume(commandId: string, waitMs?: number): Promise<HostRun> {
    return this.runner(waitMs ?? this.options.budgetMs('collect')).resume(commandId);
  }
}
