// Messages by name, encoded and decoded with protobufjs reflection: the one codec the agent
// protocol and the containerd shim protocol both use. Decoding fills defaults, turns 64-bit
// numbers into JS numbers and bytes into Buffers, so handlers see plain objects.
import type protobuf from "protobufjs";

export interface Codec {
  encode(name: string, value: object): Uint8Array;
  decode<T>(name: string, data: Uint8Array): T;
}

const DECODE_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  bytes: Buffer,
  defaults: true,
  arrays: true,
};

/** A codec for the messages of `root`; a name without a dot is looked up in `pkg`. */
export function protobufCodec(root: protobuf.Root, pkg: string): Codec {
  const types = new Map<string, protobuf.Type>();
  const type = (name: string): protobuf.Type => {
    let t = types.get(name);
    if (!t) {
      t = root.lookupType(name.includes(".") ? name : `${pkg}.${name}`);
      types.set(name, t);
    }
    return t;
  };
  return {
    encode(name, value) {
      const t = type(name);
      return t.encode(t.fromObject(value as Record<string, unknown>)).finish();
    },
    decode<T>(name: string, data: Uint8Array): T {
      const t = type(name);
      return t.toObject(t.decode(data), DECODE_OPTIONS) as T;
    },
  };
}
