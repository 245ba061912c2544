import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { InvalidRequestError, RateLimitError, errorMessage, tlsMode, type ServerTls } from '../../core';
import { SampledWarnings } from '../sampled-warnings';
import { HttpError, type HttpReply, type HttpRequest, type HttpRoutes } from './http-types';

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** Largest request body accepted; a larger one is answered 413 without reading it all. */
  readonly maxBodyBytes: number;
  readonly routes: HttpRoutes;
  readonly logger: Logger;
  /** HTTPS (and mTLS with a client CA); absent = plain HTTP. */
  readonly tls?: ServerTls | undefined;
}

/**
 * The HTTP side (node:http): routes by path then method, reads bodies with a size limit, and
 * turns every failure into a JSON answer: 400 naming the field for bad input, 404, 405 with
 * `Allow`, 413, 415, 503 for a transient failure (no config, store down), 500 otherwise.
 */
export class HttpServer {
  private readonly server: Server;
  private readonly logger: Logger;
  private readonly warnings: SampledWarnings;

  constructor(private readonly options: HttpServerOptions) {
    this.logger = options.logger.child({ component: 'http' });
    this.warnings = new SampledWarnings(this.logger);
    const listener: RequestListener = (request, response) => void this.handle(request, response);
    const { tls } = options;
    this.server =
      tls === undefined
        ? createServer(listener)
        : createTlsServer({ cert: tls.cert, key: tls.key, ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }) }, listener);
    this.server.keepAliveTimeout = 5000;
  }

  /** Resolves with the bound port. */
  start(): Promise<number> {
    return new Promise((resolvePort, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        const { port } = this.server.address() as AddressInfo;
        this.logger.info({ port, host: this.options.host, transport: tlsMode(this.options.tls) }, 'HTTP server listening');
        resolvePort(port);
      });
    });
  }

  /** Stops accepting; lets requests in flight finish, then closes idle connections. */
  stop(): Promise<void> {
    return new Promise((resolveStop) => {
      if (!this.server.listening) {
        resolveStop();
        return;
      }
      this.server.close(() => resolveStop());
      this.server.closeIdleConnections();
    });
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let reply: HttpReply | undefined;
    try {
      const url = new URL(request.url ?? '/', 'http://ringlimit');
      const methods = this.options.routes.get(url.pathname);
      if (methods === undefined) throw new HttpError(404, `no such endpoint: ${url.pathname}`);
      const handler = methods.get(request.method ?? 'GET');
      if (handler === undefined) {
        const allow = [...methods.keys()].join(', ');
        throw new HttpError(405, `${request.method} is not allowed on ${url.pathname}; use ${allow}`, undefined, { allow });
      }
      reply = await handler(this.requestOf(request, response, url));
    } catch (error) {
      reply = this.errorReply(error);
      // A body left unread (e.g. one over the limit) must not be parsed as the next request.
      if (!request.complete) response.setHeader('connection', 'close');
    }
    if (reply !== undefined) send(response, reply);
  }

  private requestOf(request: IncomingMessage, response: ServerResponse, url: URL): HttpRequest {
    return {
      method: request.method ?? 'GET',
      url,
      headers: request.headers,
      jsonBody: () => readJsonBody(request, this.options.maxBodyBytes),
      raw: { request, response },
    };
  }

  private errorReply(error: unknown): HttpReply {
    if (error instanceof HttpError) {
      return { status: error.status, json: { error: error.message, ...(error.field === undefined ? {} : { field: error.field }) }, headers: error.headers };
    }
    if (error instanceof InvalidRequestError) return { status: 400, json: { error: error.message, field: error.field } };
    if (error instanceof RateLimitError && error.transient) {
      this.warnings.warn(error.code, { err: errorMessage(error) }, 'HTTP request failed');
      return { status: 503, json: { error: error.message } };
    }
    this.logger.error({ err: error }, 'HTTP request failed unexpectedly');
    return { status: 500, json: { error: `internal error: ${errorMessage(error)}` } };
  }
}

function send(response: ServerResponse, reply: HttpReply): void {
  const body = reply.text ?? `${JSON.stringify(reply.json ?? {})}\n`;
  response.writeHead(reply.status, {
    'content-type': reply.text === undefined ? 'application/json' : 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...reply.headers,
  });
  response.end(body);
}

/**
 * Content types a JSON body may come with: JSON itself, and the defaults of `curl -d`
 * (form-urlencoded) and of plain-text clients, as envoyproxy/ratelimit's /json does not look at
 * the type. Anything else (multipart, XML, protobuf, …) is refused.
 */
const JSON_CONTENT_TYPES = /^\s*(application\/(json|[\w.+-]+\+json|x-www-form-urlencoded)|text\/plain)\s*(;|$)/i;

/** Reads a JSON object body of at most `maxBytes`; answers 413 as soon as it is over, without reading the rest. */
async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const type = request.headers['content-type'];
  if (type !== undefined && !JSON_CONTENT_TYPES.test(type)) throw new HttpError(415, `expected Content-Type application/json, got '${type}'`);
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBytes) throw new HttpError(413, `body of ${declared} bytes is over the limit of ${maxBytes}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, `body is over the limit of ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks)));
  } catch (error) {
    throw new HttpError(400, `body is not valid JSON: ${errorMessage(error)}`, 'body');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, 'body must be a JSON object', 'body');
  return parsed as Record<string, unknown>;
}
