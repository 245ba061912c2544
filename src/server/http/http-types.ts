import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a route answers: a status and a JSON value or a text body. */
export interface HttpReply {
  readonly status: number;
  readonly json?: unknown;
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/** A request as routes see it: the parsed URL, and the body read on demand (bounded). */
export interface HttpRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  /** The body parsed as a JSON object; 400/413/415 errors are thrown as HttpError. */
  jsonBody(): Promise<Record<string, unknown>>;
  /** The raw Node request and response, for handlers that write their own answer (/metrics). */
  readonly raw: { readonly request: IncomingMessage; readonly response: ServerResponse };
}

/** A route's answer, or `undefined` when it wrote the response itself. */
export type HttpHandler = (request: HttpRequest) => Promise<HttpReply | undefined>;

/** path → method → handler. */
export type HttpRoutes = ReadonlyMap<string, ReadonlyMap<string, HttpHandler>>;

/** An HTTP failure with the status to answer and, for bad input, the field at fault. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}
