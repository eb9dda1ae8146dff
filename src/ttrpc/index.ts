export { type CallOptions, TtrpcClient } from "./client.js";
export { type Codec, protobufCodec } from "./codec.js";
export {
  ClientStreamIds,
  type Decoded,
  encodeFrame,
  FLAG_REMOTE_CLOSED,
  FLAG_REMOTE_OPEN,
  type Frame,
  FrameDecoder,
  FramingError,
  HEADER_LENGTH,
  isOversize,
  MAX_DATA_LENGTH,
  MessageType,
  type OversizeFrame,
  readFrames,
} from "./framing.js";
export { Code, type Metadata, TtrpcError } from "./messages.js";
export { type CallContext, type Handler, TtrpcServer } from "./server.js";
