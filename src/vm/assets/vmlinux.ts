// The ELF kernel inside a bzImage. The x86 boot header says where the compressed
// payload sits (payload_offset/payload_length, boot protocol 2.08+); the payload is a
// compressed stream followed by the 4-byte little-endian size of what it expands to.
import { execFile } from "node:child_process";
import { gunzipSync } from "node:zlib";
import { MoatError } from "../../spec/errors.js";

export async function extractVmlinux(bzImage: Buffer, what = "bzImage"): Promise<Buffer> {
  const bad = (why: string) => new MoatError("EIO", `cannot extract the ELF kernel from ${what}: ${why}`);
  if (bzImage.length < 0x250 || bzImage.toString("latin1", 0x202, 0x206) !== "HdrS")
    throw bad("no bzImage header");
  if (bzImage.readUInt16LE(0x206) < 0x208) throw bad("boot protocol older than 2.08");
  const setupSects = bzImage[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + bzImage.readUInt32LE(0x248);
  const length = bzImage.readUInt32LE(0x24c);
  if (length < 8 || start + length > bzImage.length) throw bad("payload outside the file");
  const payload = bzImage.subarray(start, start + length - 4);
  const expected = bzImage.readUInt32LE(start + length - 4);
  let elf: Buffer;
  if (payload[0] === 0x1f && payload[1] === 0x8b) elf = gunzipSync(payload);
  else if (payload.readUInt32BE(0) === 0xfd377a58) elf = await decompress("xz", payload);
  else if (payload.readUInt32LE(0) === 0xfd2fb528) elf = await decompress("zstd", payload);
  else throw bad(`unknown payload compression (magic ${payload.subarray(0, 4).toString("hex")})`);
  if (elf.length !== expected) throw bad(`payload expanded to ${elf.length} bytes, header says ${expected}`);
  if (elf.readUInt32BE(0) !== 0x7f454c46) throw bad("payload is not an ELF file");
  return elf;
}

function decompress(tool: "xz" | "zstd", data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool,
      ["-dc"],
      { encoding: "buffer", maxBuffer: 512 * 1024 * 1024 },
      (err, stdout) => {
        if (err) {
          const pkg = tool === "xz" ? "xz-utils" : "zstd";
          reject(
            new MoatError("EIO", `${tool} could not decompress the kernel: install the ${pkg} package`, {
              cause: err,
            }),
          );
        } else resolve(stdout);
      },
    );
    child.stdin!.on("error", () => {}); // the exit status reports the failure
    child.stdin!.end(data);
  });
}
