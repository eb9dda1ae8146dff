// ttrpc's envelope messages (containerd/ttrpc request.proto, with google.rpc.Status), read
// by protobufjs reflection from the text below: no generated code to keep in sync.
import protobuf from "protobufjs";

const ENVELOPE_PROTO = `
syntax = "proto3";
package ttrpc;
message KeyValue { string key = 1; string value = 2; }
message Request {
  string service = 1;
  string method = 2;
  bytes payload = 3;
  int64 timeout_nano = 4;
  repeated KeyValue metadata = 5;
}
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
message Response { Status status = 1; bytes payload = 2; }
`;

const root = protobuf.parse(ENVELOPE_PROTO, { keepCase: true }).root;
const RequestType = root.lookupType("ttrpc.Request");
const ResponseType = root.lookupType("ttrpc.Response");

/** gRPC status codes, which ttrpc carries unchanged. */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

export type Metadata = ReadonlyArray<{ readonly key: string; readonly value: string }>;

export interface RequestMessage {
  readonly service: string;
  readonly method: string;
  readonly payload: Uint8Array;
  /** 0 means no deadline. */
  readonly timeoutNano: bigint;
  readonly metadata: Metadata;
}

export interface ResponseMessage {
  readonly status: { readonly code: number; readonly message: string };
  readonly payload: Uint8Array;
}

/** A call that ended with a non-OK status; `code` is a gRPC status code. */
export class TtrpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "TtrpcError";
  }
}

export function encodeRequest(r: RequestMessage): Uint8Array {
  return RequestType.encode(
    RequestType.fromObject({
      service: r.service,
      method: r.method,
      payload: r.payload,
      timeout_nano: r.timeoutNano.toString(),
      metadata: r.metadata.map((m) => ({ key: m.key, value: m.value })),
    }),
  ).finish();
}

export function decodeRequest(data: Uint8Array): RequestMessage {
  const o = RequestType.toObject(RequestType.decode(data), { longs: String, bytes: Buffer, defaults: true });
  return {
    service: String(o["service"]),
    method: String(o["method"]),
    payload: o["payload"] as Buffer,
    timeoutNano: BigInt(o["timeout_nano"] as string),
    metadata: (o["metadata"] as { key: string; value: string }[]).map((m) => ({
      key: m.key,
      value: m.value,
    })),
  };
}

export function encodeResponse(r: ResponseMessage): Uint8Array {
  return ResponseType.encode(
    ResponseType.fromObject({
      status: r.status.code === Code.OK && r.status.message === "" ? undefined : r.status,
      payload: r.payload,
    }),
  ).finish();
}

export function decodeResponse(data: Uint8Array): ResponseMessage {
  const o = ResponseType.toObject(ResponseType.decode(data), { bytes: Buffer, defaults: true });
  const status = (o["status"] as { code?: number; message?: string } | null | undefined) ?? {};
  // An absent status is OK: peers leave the field out on success.
  return {
    status: { code: status.code ?? Code.OK, message: status.message ?? "" },
    payload: o["payload"] as Buffer,
  };
}
