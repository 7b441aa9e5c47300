import { execFile } from 'node:child_process';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { promisify } from 'node:util';
import { selfSignedCertificate, type TlsMaterial } from '../support/tls.js';

const _execFileAsync = promisify(execFile);

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly authorization: string | undefined;
  readonly accept: string | undefined;
  /** performance.now() when the request arrived. */
  readonly at: number;
}

export type StandInHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  index: number,
) => void | Promise<void>;

export interface StandIn {
  readonly origin: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

export type { TlsMaterial };

/**
 * A tiny HTTP(S) server for the behaviour a real registry will not show on demand (throttling, resets,
 * oversized or corrupt bodies, redirects to object storage). Every request is noted before the handler runs.
 */
export async function startStandIn(handler: StandInHandler, tls?: TlsMaterial): Promise<StandIn> {
  const requests: SeenRequest[] = [];
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const index = requests.length;
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorization: req.headers.authorization,
      accept: req.headers.accept,
      at: performance.now(),
    });
    Promise.resolve(handler(req, res, index)).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(error));
    });
  };
  const server: Server = tls ? createHttpsServer(tls, listener) : createHttpServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('stand-in server has no TCP address');
  return {
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A self-signed certificate for 127.0.0.1. */
export function selfSignedLoopbackCertificate(): Promise<TlsMaterial> {
  return selfSignedCertificate('127.0.0.1', 'IP:127.0.0.1');
}

export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
