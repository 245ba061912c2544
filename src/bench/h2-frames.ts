/*
 * Just enough of HTTP/2 (RFC 9113) for a gRPC load generator that writes its calls as prebuilt
 * frames: the request headers are encoded once (HPACK literals, RFC 7541 §6.2.2), and only a
 * stream id is patched per call. Responses are read frame by frame without decoding their headers.
 */

export const CONNECTION_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = { DATA: 0x0, HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, PING: 0x6, GOAWAY: 0x7, WINDOW_UPDATE: 0x8 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

const FRAME_HEADER_BYTES = 9;
/** The largest flow-control window (2^31 - 1). */
export const MAX_WINDOW = 0x7fffffff;
/** Every window starts at this until SETTINGS say otherwise. */
export const DEFAULT_WINDOW = 65_535;
const SETTINGS_ENABLE_PUSH = 0x2;
const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
const SETTINGS_INITIAL_WINDOW_SIZE = 0x4;
const SETTING_BYTES = 6;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const bytes = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  bytes.writeUIntBE(payload.length, 0, 3);
  bytes[3] = type;
  bytes[4] = flags;
  bytes.writeUInt32BE(streamId & MAX_WINDOW, 5);
  payload.copy(bytes, FRAME_HEADER_BYTES);
  return bytes;
}

/** The client's opening: preface, SETTINGS (no push, the largest stream window) and the largest connection window. */
export function openingBytes(): Buffer {
  const settings = Buffer.alloc(12);
  settings.writeUInt16BE(SETTINGS_ENABLE_PUSH, 0);
  settings.writeUInt32BE(0, 2);
  settings.writeUInt16BE(SETTINGS_INITIAL_WINDOW_SIZE, 6);
  settings.writeUInt32BE(MAX_WINDOW, 8);
  return Buffer.concat([CONNECTION_PREFACE, frame(FrameType.SETTINGS, 0, 0, settings), windowUpdate(0, MAX_WINDOW - DEFAULT_WINDOW)]);
}

/** SETTINGS_MAX_CONCURRENT_STREAMS from a SETTINGS frame's payload, if it has one (the last one counts, RFC 9113 §6.5). */
export function maxConcurrentStreams(settings: Buffer): number | undefined {
  let limit: number | undefined;
  for (let offset = 0; offset + SETTING_BYTES <= settings.length; offset += SETTING_BYTES) {
    if (settings.readUInt16BE(offset) === SETTINGS_MAX_CONCURRENT_STREAMS) limit = settings.readUInt32BE(offset + 2);
  }
  return limit;
}

export function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment, 0);
  return frame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

/** HPACK "literal header field with incremental indexing, new name", for names and values under 127 bytes (RFC 7541 §6.2.1). */
function indexedLiteral(name: string, value: string): Buffer {
  const nameBytes = Buffer.from(name, 'latin1');
  const valueBytes = Buffer.from(value, 'latin1');
  if (nameBytes.length > 126 || valueBytes.length > 126) throw new Error(`header ${name} too long for a one-byte length`);
  return Buffer.concat([Buffer.from([0x40, nameBytes.length]), nameBytes, Buffer.from([valueBytes.length]), valueBytes]);
}

/** The first dynamic-table index (RFC 7541 §2.3.3): the 61 static entries come before it. */
const FIRST_DYNAMIC_INDEX = 62;

/**
 * One gRPC call as bytes: a HEADERS frame (END_HEADERS) and a DATA frame (END_STREAM) carrying
 * `message` (a length-prefixed gRPC message). A connection's first call adds its headers to the
 * server's HPACK table; every later one names them by index, one byte each, as Envoy and h2load
 * do. `withStream` gives the bytes for one stream id.
 */
export class PrebuiltCall {
  private readonly first: Buffer;
  private readonly later: Buffer;

  constructor(headers: readonly (readonly [string, string])[], message: Buffer) {
    const data = frame(FrameType.DATA, Flag.END_STREAM, 1, message);
    const literals = Buffer.concat(headers.map(([name, value]) => indexedLiteral(name, value)));
    // Each insertion takes the first dynamic index, so the first header inserted ends up last.
    const indexes = Buffer.from(headers.map((_, position) => 0x80 | (FIRST_DYNAMIC_INDEX + headers.length - 1 - position)));
    this.first = Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, literals), data]);
    this.later = Buffer.concat([frame(FrameType.HEADERS, Flag.END_HEADERS, 1, indexes), data]);
  }

  /** Bytes of DATA payload the call sends, for flow control. */
  get dataBytes(): number {
    return this.later.length - this.later.readUIntBE(0, 3) - 2 * FRAME_HEADER_BYTES;
  }

  /** The call's bytes on `streamId`; `firstOnConnection` carries the literal headers the later calls index. */
  withStream(streamId: number, firstOnConnection: boolean): Buffer {
    // A copy: a corked socket keeps the buffers it is given until it writes them.
    const bytes = Buffer.from(firstOnConnection ? this.first : this.later);
    bytes.writeUInt32BE(streamId, 5);
    bytes.writeUInt32BE(streamId, FRAME_HEADER_BYTES + bytes.readUIntBE(0, 3) + 5);
    return bytes;
  }
}

export interface IncomingFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

/** Splits a byte stream into frames, keeping a partial frame for the next chunk. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer, onFrame: (incoming: IncomingFrame) => void): void {
    let bytes = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (bytes.length >= FRAME_HEADER_BYTES) {
      const length = bytes.readUIntBE(0, 3);
      if (bytes.length < FRAME_HEADER_BYTES + length) break;
      onFrame({
        type: bytes[3] as number,
        flags: bytes[4] as number,
        streamId: bytes.readUInt32BE(5) & MAX_WINDOW,
        payload: bytes.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length),
      });
      bytes = bytes.subarray(FRAME_HEADER_BYTES + length);
    }
    this.pending = bytes.length === 0 ? Buffer.alloc(0) : Buffer.from(bytes);
  }
}
