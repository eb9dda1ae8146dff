// The container's "/": the image read through the gofer, under the in-memory tree that
// takes every change (see inode.ts). Image inodes keep the host's inode numbers, so `ls -i`
// and getdents agree without a gofer round trip per entry; inodes made in memory count
// from 2^32 up, above any number ext4 or xfs hands out for the image.
// Two image names of one host inode (a hard link) become two inodes with one number, and a
// write through one name copies up only that name, as Linux's overlayfs does without its index.
import { close as closeHostFd, type HostStat, O_DIRECTORY, O_PATH, readlinkat } from "../../sys/file.js";
import type { GoferClient } from "../gofer/client.js";
import { DirInode, FileInode, Fs, hostSpecialInode, type Inode } from "./inode.js";
import { S_IFDIR, S_IFMT, S_IFREG } from "./stat.js";

export const FIRST_MEMORY_INO = 2 ** 32;

export class ImageFs extends Fs {
  constructor(
    dev: number,
    readonly hostDev: number,
  ) {
    super(dev, "overlay", "overlay", false, FIRST_MEMORY_INO);
  }

  /** The number an image inode shows: the host's, unless it lives on another host device. */
  inoFor(st: HostStat): number {
    return this.hostIno(st, this.hostDev);
  }
}

function adopt(fs: ImageFs, gofer: GoferClient) {
  const make = (parent: DirInode, name: string, st: HostStat, fd: number, path: string): Inode => {
    const ino = fs.inoFor(st);
    let node: Inode;
    switch (st.mode & S_IFMT) {
      case S_IFDIR:
        node = imageDir(fs, gofer, st, parent, name, path);
        break;
      case S_IFREG:
        node = new FileInode(fs, st.mode, st.uid, st.gid, { gofer, path, size: st.size }, ino);
        break;
      default:
        return hostSpecialInode(fs, st, ino, () => readlinkat(fd, ""));
    }
    node.adoptHostStat(st);
    return node;
  };
  return make;
}

function imageDir(
  fs: ImageFs,
  gofer: GoferClient,
  st: HostStat,
  parent: DirInode | null,
  name: string,
  path: string,
): DirInode {
  const d = new DirInode(fs, st.mode, st.uid, st.gid, parent, name, fs.inoFor(st));
  d.adoptHostStat(st);
  d.image = { gofer, path };
  d.adopt = adopt(fs, gofer);
  d.imageIno = (hostIno) => fs.inoFor({ ...st, ino: hostIno });
  return d;
}

/** The root directory of the image, as the overlay's root. */
export async function openImageRoot(gofer: GoferClient, dev: number): Promise<DirInode> {
  const r = await gofer.open(".", O_PATH | O_DIRECTORY);
  closeHostFd(r.fd);
  const fs = new ImageFs(dev, r.stat.dev);
  return imageDir(fs, gofer, r.stat, null, "/", ".");
}
