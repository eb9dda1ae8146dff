// tar-stream decodes PAX values as UTF-8, which mangles binary xattr values (file
// capabilities, ACLs). This scanner walks the same raw tar bytes alongside it, block by block,
// and keeps the raw bytes of each entry's SCHILY.xattr.* records, numbered in the order
// tar-stream emits entries. The tree writer only trusts a raw value whose UTF-8 decoding
// equals what tar-stream reported for the same entry and key, so a disagreement between the
// two readers can never attach a value to the wrong file: at worst the raw bytes go unused.

const BLOCK = 512;
const XATTR_KEY = "SCHILY.xattr.";

type Records = Map<string, Buffer>;

export class RawPaxScanner {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes still to skip (entry data or padding). */
  private skip = 0;
  /** Set while collecting the payload of a PAX or GNU long-name header. */
  private collect: { type: number; size: number } | null = null;
  private global: Records = new Map();
  private local: Records | null = null;
  private entries = 0;
  private readonly found = new Map<number, Records>();
  private broken = false;

  /** Feed the next raw tar bytes (in order, every byte once). */
  push(chunk: Buffer): void {
    if (this.broken) return;
    let buf = chunk;
    while (buf.length > 0) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, buf.length);
        this.skip -= n;
        buf = buf.subarray(n);
        continue;
      }
      const want = this.collect ? this.collect.size : BLOCK;
      const n = Math.min(want - this.pendingLen, buf.length);
      this.pending.push(buf.subarray(0, n));
      this.pendingLen += n;
      buf = buf.subarray(n);
      if (this.pendingLen < want) return;
      const whole = Buffer.concat(this.pending, this.pendingLen);
      this.pending = [];
      this.pendingLen = 0;
      if (this.collect) this.payload(whole);
      else this.header(whole);
    }
  }

  /** The raw SCHILY.xattr records of entry number `index` (0-based, as emitted), once. */
  take(index: number): Records | undefined {
    const r = this.found.get(index);
    this.found.delete(index);
    return r;
  }

  private header(block: Buffer): void {
    if (checksum(block) === 8 * 32) return; // an all-zero block (end of archive)
    const flag = block[156] === 0 ? 0 : block[156]! - 48;
    const size = number(block, 124, 12);
    if (size === undefined || size < 0) {
      this.broken = true;
      return;
    }
    // The same typeflags tar-stream reads as PAX / GNU long-name headers.
    if (flag === 72 || flag === 55 || flag === 27 || flag === 28 || flag === 30) {
      if (size === 0) return;
      this.collect = { type: flag, size };
      return;
    }
    const index = this.entries++;
    const pax = new Map([...this.global, ...(this.local ?? [])]);
    this.local = null;
    const xattrs: Records = new Map([...pax].filter(([k]) => k.startsWith(XATTR_KEY)));
    if (xattrs.size > 0) this.found.set(index, xattrs);
    let dataSize = size;
    const paxSize = pax.get("size");
    if (paxSize !== undefined) dataSize = Number.parseInt(paxSize.toString("utf8"), 10);
    // tar-stream skips no data for directories (old tars mark them with a trailing slash).
    if (flag === 5 || (flag === 0 && nameEndsWithSlash(block))) dataSize = 0;
    if (!Number.isFinite(dataSize) || dataSize < 0) {
      this.broken = true;
      return;
    }
    this.skip = padded(dataSize);
  }

  private payload(data: Buffer): void {
    const { type, size } = this.collect!;
    this.collect = null;
    this.skip = padded(size) - size;
    if (type === 72) this.local = parseRecords(data);
    else if (type === 55) this.global = new Map([...this.global, ...parseRecords(data)]);
  }
}

function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function checksum(block: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  return sum;
}

function nameEndsWithSlash(block: Buffer): boolean {
  let end = block.indexOf(0, 0);
  if (end === -1 || end > 100) end = 100;
  return end > 0 && block[end - 1] === 0x2f;
}

/** A numeric header field: octal text, or base-256 when the top bit of the first byte is set. */
function number(block: Buffer, offset: number, length: number): number | undefined {
  const field = block.subarray(offset, offset + length);
  if (field[0]! & 0x80) {
    if (field[0]! & 0x40) return undefined; // negative
    let n = field[0]! & 0x3f;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString("latin1").replace(/^[ \0]+/, "");
  const digits = /^[0-7]*/.exec(text)![0];
  return digits === "" ? 0 : Number.parseInt(digits, 8);
}

/** PAX records ("<len> <key>=<value>\n"), values kept as raw bytes. */
function parseRecords(data: Buffer): Records {
  const out: Records = new Map();
  let rest = data;
  while (rest.length > 0) {
    const space = rest.indexOf(0x20);
    if (space <= 0) break;
    const len = Number.parseInt(rest.subarray(0, space).toString("latin1"), 10);
    if (!(len > space + 1) || len > rest.length) break;
    const record = rest.subarray(space + 1, len - 1);
    const eq = record.indexOf(0x3d);
    if (eq === -1) break;
    out.set(record.subarray(0, eq).toString("utf8"), Buffer.from(record.subarray(eq + 1)));
    rest = rest.subarray(len);
  }
  return out;
}
