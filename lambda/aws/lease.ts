import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { LeaseOutcome, LeaseRecord, RunLease } from '../ports.js';
import { bodyText, RUNS_PREFIX } from './history.js';

/** The object that says a run is in progress, until it ends or its invocation's time is up. */
export const LEASE_KEY = `${RUNS_PREFIX}lease.json`;

const leaseSchema = z.object({
  requestId: z.string().max(256),
  acquiredAt: z.iso.datetime(),
  expiresAt: z.iso.datetime(),
});

/** The lease could not be taken or given back for a reason other than another run holding it. */
export class LeaseError extends Error {
  override readonly name = 'LeaseError';
  readonly code = 'RJ_LEASE';
}

const errorName = (error: unknown): string => {
  const name = (error as { name?: unknown })?.name;
  return typeof name === 'string' ? name : 'Error';
};

const httpStatus = (error: unknown): number | undefined =>
  (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;

/** S3 refused a conditional request: the object changed, or another writer is writing it right now. */
const lostTheRace = (error: unknown): boolean =>
  ['PreconditionFailed', 'ConditionalRequestConflict'].includes(errorName(error)) ||
  httpStatus(error) === 412 ||
  httpStatus(error) === 409;

export interface S3RunLeaseOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * A run lease as one object in the output bucket, created with a conditional write (`If-None-Match: *`) so that
 * only one invocation can create it. A lease past its expiry belongs to an invocation that was stopped before it
 * could release it; it is replaced with a write conditional on its ETag, so again only one invocation wins.
 */
export class S3RunLease implements RunLease {
  private readonly now: () => number;

  constructor(private readonly options: S3RunLeaseOptions) {
    this.now = options.now ?? Date.now;
  }

  private where(): string {
    return `s3://${this.options.bucket}/${LEASE_KEY}`;
  }

  private failure(action: string, permission: string, error: unknown): LeaseError {
    const hint = errorName(error).startsWith('AccessDenied')
      ? `: the function role needs ${permission} on it`
      : '';
    return new LeaseError(
      `${action} the run lease ${this.where()} failed (${errorName(error)}: ${(error as Error).message})${hint}`,
      { cause: error },
    );
  }

  /** Writes the lease under a condition; undefined when the condition did not hold. */
  private async put(
    record: LeaseRecord,
    condition: { IfNoneMatch: '*' } | { IfMatch: string },
  ): Promise<{ etag?: string } | undefined> {
    try {
      const answer = await this.options.s3.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: LEASE_KEY,
          Body: `${JSON.stringify(record)}\n`,
          ContentType: 'application/json',
          ...condition,
        }),
      );
      return answer.ETag !== undefined ? { etag: answer.ETag } : {};
    } catch (error) {
      if (lostTheRace(error)) return undefined;
      throw this.failure('writing', 's3:PutObject', error);
    }
  }

  /** The lease as it is now; undefined when there is none. A record that is not a lease reads as expired. */
  private async current(): Promise<{ record?: LeaseRecord; etag?: string } | undefined> {
    let text: string;
    let etag: string | undefined;
    try {
      const answer = await this.options.s3.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: LEASE_KEY }),
      );
      etag = answer.ETag;
      text = await bodyText(answer.Body);
    } catch (error) {
      if (errorName(error) === 'NoSuchKey') return undefined;
      throw this.failure('reading', 's3:GetObject', error);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    const parsed = leaseSchema.safeParse(json);
    return { ...(parsed.success ? { record: parsed.data } : {}), ...(etag !== undefined ? { etag } : {}) };
  }

  private held(etag: string | undefined, replaced?: LeaseRecord): LeaseOutcome {
    return {
      acquired: true,
      ...(replaced !== undefined ? { replaced } : {}),
      release: async () => {
        try {
          await this.options.s3.send(
            new DeleteObjectCommand({
              Bucket: this.options.bucket,
              Key: LEASE_KEY,
              ...(etag !== undefined ? { IfMatch: etag } : {}),
            }),
          );
        } catch (error) {
          // Another invocation replaced the lease after it expired, or it is gone: either way it is not ours.
          if (lostTheRace(error) || errorName(error) === 'NoSuchKey') return;
          throw this.failure('deleting', 's3:DeleteObject and s3:GetObject', error);
        }
      },
    };
  }

  async acquire(record: LeaseRecord): Promise<LeaseOutcome> {
    // Twice: a lease released between the refused write and the read leaves nothing to compare with.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const created = await this.put(record, { IfNoneMatch: '*' });
      if (created !== undefined) return this.held(created.etag);
      const current = await this.current();
      if (current === undefined) continue;
      if (current.record !== undefined && Date.parse(current.record.expiresAt) > this.now()) {
        return { acquired: false, heldBy: current.record };
      }
      if (current.etag === undefined) return { acquired: false };
      const replaced = await this.put(record, { IfMatch: current.etag });
      if (replaced !== undefined) return this.held(replaced.etag, current.record);
      return { acquired: false };
    }
    return { acquired: false };
  }
}
