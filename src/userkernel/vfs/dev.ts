// /dev: the character devices every program expects, served by the kernel itself, and no
// terminal (the sandbox's stdio are pipes). /dev/stdin, stdout and stderr point into
// /proc/self/fd as on Linux; /dev/shm is a tmpfs mounted by the VFS.
import { randomFillSync } from "node:crypto";
import { fail } from "../errno.js";
import type { FileDescription, FileStat } from "../kernel/fdtable.js";
import { fileStat } from "./file.js";
import { DeviceInode, DirInode, type Fs, type Inode, SymlinkInode } from "./inode.js";
import { makedev, S_IFCHR } from "./stat.js";

/** A stateless character device; reads and writes are immediate. */
class CharDevice implements FileDescription {
  constructor(
    private readonly inode: Inode,
    public flags: number,
    private readonly onRead: (dst: Uint8Array) => number,
    private readonly onWrite: (src: Buffer) => number,
  ) {}
  read(dst: Uint8Array): number {
    return this.onRead(dst);
  }
  pread(dst: Uint8Array): number {
    return this.onRead(dst);
  }
  write(src: Buffer): number {
    return this.onWrite(src);
  }
  pwrite(src: Buffer): number {
    return this.onWrite(src);
  }
  seek(): number {
    return 0;
  }
  ioctl(): number {
    return fail("ENOTTY");
  }
  stat(): FileStat {
    return fileStat(this.inode);
  }
}

const eof = (): number => 0;
const zeros = (dst: Uint8Array): number => {
  dst.fill(0);
  return dst.length;
};
const sink = (src: Buffer): number => src.length;
const random = (dst: Uint8Array): number => {
  // getrandom's own limit per call; larger reads return short, as Linux does.
  const n = Math.min(dst.length, 33554431);
  randomFillSync(dst, 0, n);
  return n;
};

interface DeviceSpec {
  name: string;
  minor: number;
  read: (dst: Uint8Array) => number;
  write: (src: Buffer) => number;
}

// Linux's numbers for the memory devices (major 1).
const MEM_DEVICES: DeviceSpec[] = [
  { name: "null", minor: 3, read: eof, write: sink },
  { name: "zero", minor: 5, read: zeros, write: sink },
  {
    name: "full",
    minor: 7,
    read: zeros,
    write: (src) => (src.length === 0 ? 0 : fail("ENOSPC")),
  },
  { name: "random", minor: 8, read: random, write: sink },
  { name: "urandom", minor: 9, read: random, write: sink },
];

/** Build the /dev tree. `shm` is left as an empty directory for a tmpfs mount. */
export function makeDevFs(fs: Fs): DirInode {
  const root = new DirInode(fs, 0o755, 0, 0, null, "dev");
  for (const d of MEM_DEVICES) {
    const node: DeviceInode = new DeviceInode(
      fs,
      S_IFCHR | 0o666,
      makedev(1, d.minor),
      (flags) => new CharDevice(node, flags, d.read, d.write),
    );
    root.attach(d.name, node);
  }
  // No controlling terminal: opening /dev/tty fails as it does for a daemon.
  root.attach("tty", new DeviceInode(fs, S_IFCHR | 0o666, makedev(5, 0), null));
  ["stdin", "stdout", "stderr"].forEach((name, fd) => {
    root.attach(name, new SymlinkInode(fs, `/proc/self/fd/${fd}`, 0, 0));
  });
  root.attach("fd", new SymlinkInode(fs, "/proc/self/fd", 0, 0));
  root.attach("shm", new DirInode(fs, 0o1777, 0, 0, root, "shm"));
  root.attach("pts", new DirInode(fs, 0o755, 0, 0, root, "pts"));
  return root;
}
