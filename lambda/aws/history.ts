import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  type PendingCollection,
  type PendingCollections,
  parsePendingCollection,
  type RunArchive,
  type RunDetails,
} from '../ports.js';
import type { FunctionReport } from '../report/function.js';
import { renderReportPage } from '../report/html.js';

/** Run reports go under this prefix of the output bucket; the stack's lifecycle rules may expire them. */
export const RUNS_PREFIX = 'runs/';
/** The collection an invocation left running, until a later one settles it. */
export const PENDING_KEY = `${RUNS_PREFIX}pending.json`;

const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** Run history could not be read or written; `cause` is the S3 error. */
export class HistoryError extends Error {
  override readonly name = 'HistoryError';
  readonly code = 'RJ_HISTORY';
}

/** `runs/<ISO time>-<request id>.json`; characters outside a request id's alphabet become `_`. */
export function reportKey(
  report: Pick<FunctionReport, 'startedAt' | 'requestId'>,
  extension: 'json' | 'html' = 'json',
): string {
  const id = report.requestId.replace(/[^A-Za-z0-9-]/g, '_').slice(0, 128);
  return `${RUNS_PREFIX}${report.startedAt}-${id}.${extension}`;
}

/** The report as a page for a person: what happened, every decision with its reason, the space it took. */
export function reportPageHtml(report: FunctionReport, details?: RunDetails): string {
  return renderReportPage({
    command: `function run (${report.trigger.kind})`,
    registry: report.registry ?? 'no registry configured',
    createdAt: report.startedAt,
    headline: report.headline,
    outcome: report.outcome,
    problems: report.problems,
    notes: report.notes,
    ...(details ? { plan: details.plan, usage: details.usage } : {}),
    ...(report.cleanup ? { run: report.cleanup } : {}),
  });
}

const errorName = (error: unknown): string => {
  const name = (error as { name?: unknown })?.name;
  return typeof name === 'string' ? name : 'Error';
};

/** An S3 object's body as text, at most 64 MiB. */
export async function bodyText(body: unknown): Promise<string> {
  if (body === undefined || body === null) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  if (typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
      size += data.byteLength;
      if (size > MAX_RECORD_BYTES) throw new Error(`larger than ${MAX_RECORD_BYTES} bytes`);
      chunks.push(data);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
  if (typeof (body as { transformToString?: unknown }).transformToString === 'function') {
    return (body as { transformToString(): Promise<string> }).transformToString();
  }
  throw new Error('the object body is not a stream');
}

export interface S3HistoryOptions {
  readonly s3: S3Client;
  readonly bucket: string;
}

/** Run reports and the pending-collection record in the output bucket. */
export class S3History implements RunArchive, PendingCollections {
  constructor(private readonly options: S3HistoryOptions) {}

  private where(key: string): string {
    return `s3://${this.options.bucket}/${key}`;
  }

  private failure(action: string, key: string, error: unknown): HistoryError {
    const permission =
      action === 'reading' ? 's3:GetObject' : action === 'writing' ? 's3:PutObject' : 's3:DeleteObject';
    const hint = errorName(error).startsWith('AccessDenied')
      ? `: the function role needs ${permission} on it`
      : '';
    return new HistoryError(
      `${action} ${this.where(key)} failed (${errorName(error)}: ${(error as Error).message})${hint}`,
      { cause: error },
    );
  }

  private async put(key: string, body: string, contentType: string): Promise<void> {
    try {
      await this.options.s3.send(
        new PutObjectCommand({ Bucket: this.options.bucket, Key: key, Body: body, ContentType: contentType }),
      );
    } catch (error) {
      throw this.failure('writing', key, error);
    }
  }

  private putJson(key: string, value: unknown): Promise<void> {
    return this.put(key, `${JSON.stringify(value, null, 2)}\n`, 'application/json');
  }

  /** The report as JSON, and beside it, under the same name, its page as HTML. */
  async save(report: FunctionReport, details?: RunDetails): Promise<{ report: string; page: string }> {
    const key = reportKey(report);
    const pageKey = reportKey(report, 'html');
    await this.putJson(key, report);
    await this.put(pageKey, reportPageHtml(report, details), 'text/html; charset=utf-8');
    return { report: this.where(key), page: this.where(pageKey) };
  }

  async read(): Promise<PendingCollection | undefined> {
    let text: string;
    try {
      const answer = await this.options.s3.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: PENDING_KEY }),
      );
      text = await bodyText(answer.Body);
    } catch (error) {
      if (errorName(error) === 'NoSuchKey') return undefined;
      throw this.failure('reading', PENDING_KEY, error);
    }
    const parsed = parsePendingCollection(text, this.where(PENDING_KEY));
    if ('problem' in parsed) throw new HistoryError(parsed.problem);
    return parsed;
  }

  async write(record: PendingCollection | undefined): Promise<void> {
    if (record !== undefined) {
      await this.putJson(PENDING_KEY, record);
      return;
    }
    try {
      await this.options.s3.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: PENDING_KEY }));
    } catch (error) {
      throw this.failure('deleting', PENDING_KEY, error);
    }
  }
}
