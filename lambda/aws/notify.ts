import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { Notifier } from '../ports.js';
import { formatBytes } from '../report/format.js';
import type { FunctionReport } from '../report/function.js';

export const SUBJECT_PREFIX = 'registry-janitor: ';
/** SNS takes subjects of ASCII text shorter than 100 characters, without line breaks. */
export const SUBJECT_LIMIT = 99;

/** A subject SNS accepts: printable ASCII only, at most SUBJECT_LIMIT characters. */
export function snsSubject(text: string): string {
  const ascii = `${SUBJECT_PREFIX}${text}`
    .replace(/\s+/g, ' ')
    .replace(/[\u2013\u2014]/g, '-')
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  return ascii.length <= SUBJECT_LIMIT ? ascii : `${ascii.slice(0, SUBJECT_LIMIT - 3)}...`;
}

function triggerText(report: FunctionReport): string {
  const trigger = report.trigger;
  switch (trigger.kind) {
    case 'schedule':
      return 'scheduled run';
    case 'manual':
      return Object.keys(trigger.overrides).length > 0
        ? `on-demand run ${JSON.stringify(trigger.overrides)}`
        : 'on-demand run';
    case 'alarm':
      return `alarm ${trigger.alarmName} ${trigger.state}`;
    case 'command-status':
      return `command ${trigger.commandId} ${trigger.status}`;
  }
}

const bytes = (n: number) => `${formatBytes(n)} (${n} bytes)`;

/** A few lines for a person: outcome, deleted, reclaimed measured against the estimate, verification, problems. */
export function notificationBody(report: FunctionReport): string {
  const f = report.figures;
  const lines = [
    `Outcome: ${report.outcome} (${triggerText(report)}${report.policy ? `, ${report.policy} policy` : ''})`,
    `Registry: ${report.registry ?? 'not configured'}`,
  ];
  const deletions = report.cleanup?.deletions;
  if (deletions) {
    lines.push(
      `Deleted: ${f.manifestsDeleted} manifests (${deletions.skipped.length} skipped, ${deletions.failed.length} failed)`,
    );
  }
  if (report.plan) {
    lines.push(
      `Would delete: ${report.plan.totals.manifestsDeleted} manifests, ${report.plan.totals.tagsDeleted} tags` +
        (report.plan.maxDelete !== undefined ? ` (maxDelete ${report.plan.maxDelete})` : ''),
    );
  }
  const estimate =
    f.bytesEstimated !== undefined ? `plan estimate ${bytes(f.bytesEstimated)}` : 'no estimate';
  if (f.bytesReclaimed !== undefined)
    lines.push(`Reclaimed: ${bytes(f.bytesReclaimed)} measured; ${estimate}`);
  else if (f.bytesEstimated !== undefined) lines.push(`Reclaimable: ${estimate}`);
  if (f.diskUsedPercentBefore !== undefined || f.diskUsedPercentAfter !== undefined) {
    lines.push(
      `Disk used: ${f.diskUsedPercentBefore ?? '?'}% before, ${f.diskUsedPercentAfter ?? '?'}% after`,
    );
  }
  const unverified = f.tagsUnverified ?? 0;
  const checked = f.tagsVerified + unverified;
  const found = [
    ...(f.integrityFailures > 0 ? [`${f.integrityFailures} of ${checked} kept tags BROKEN`] : []),
    ...(unverified > 0 ? [`${unverified} of ${checked} kept tags not verified (deadline passed)`] : []),
  ];
  if (found.length > 0) lines.push(`Verification: ${found.join(', ')}`);
  else if (f.tagsVerified > 0) lines.push(`Verification: all ${f.tagsVerified} kept tags resolve completely`);
  if (report.problems.length > 0) lines.push('Problems:', ...report.problems.map((p) => `- ${p}`));
  if (report.notes.length > 0) lines.push('Notes:', ...report.notes.map((n) => `- ${n}`));
  if (report.historyLocation) lines.push(`Full report: ${report.historyLocation}`);
  if (report.reportPage) lines.push(`Report page: ${report.reportPage}`);
  return `${lines.join('\n')}\n`;
}

/** The notification could not be published; `cause` is the SNS error. */
export class NotifyError extends Error {
  override readonly name = 'NotifyError';
  readonly code = 'RJ_NOTIFY';
}

export interface SnsNotifierOptions {
  readonly sns: SNSClient;
  readonly topicArn: string;
}

/** A short summary of each run to an SNS topic. */
export class SnsNotifier implements Notifier {
  constructor(private readonly options: SnsNotifierOptions) {}

  async notify(report: FunctionReport): Promise<void> {
    const { topicArn } = this.options;
    try {
      await this.options.sns.send(
        new PublishCommand({
          TopicArn: topicArn,
          Subject: snsSubject(report.headline),
          Message: notificationBody(report),
        }),
      );
    } catch (error) {
      const name = (error as { name?: unknown })?.name;
      throw new NotifyError(
        `publishing to ${topicArn} failed (${String(name)}: ${(error as Error).message}): the function role needs sns:Publish on the topic`,
        { cause: error },
      );
    }
  }
}
