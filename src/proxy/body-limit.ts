/**
 * Counts a streamed (chunked) request body and fails the stream once it passes the limit, so an
 * upload without Content-Length cannot bypass `request-size`. Bodies with Content-Length are
 * checked up front by the policy and framed by Node's parser, so they skip this.
 */
import { Transform, type TransformCallback } from 'node:stream';

export class BodyTooLargeError extends Error {
  readonly code = 'PINPOINT_BODY_TOO_LARGE';
  readonly limit: number;
  readonly received: number;
  constructor(limit: number, received: number) {
    super(`request body exceeded ${limit} bytes`);
    this.limit = limit;
    this.received = received;
  }
}

export class BodyLimit extends Transform {
  readonly #limit: number;
  #seen = 0;
  constructor(limit: number) {
    super();
    this.#limit = limit;
  }
  get seen(): number {
    return this.#seen;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) cb(new BodyTooLargeError(this.#limit, this.#seen));
    else cb(null, chunk);
  }
}
