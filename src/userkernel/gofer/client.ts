// The kernel's end of the gofer: starts the gofer process and turns "open this path of the
// rootfs" into a promise of a host descriptor. The kernel is an event loop, so replies are
// read when libuv reports the socket readable (uv_poll through sys/socket), never by
// blocking a thread; requests are pipelined and answered in order (the gofer is serial and
// SOCK_SEQPACKET keeps order), so a FIFO of pending promises matches replies to requests.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { MoatError } from "../../spec/errors.js";
import type { ErrnoName } from "../../sys/errno.js";
import { close as closeFd, type HostStat, O_DIRECTORY, O_PATH } from "../../sys/file.js";
import { SysError } from "../../sys/libc.js";
import {
  closeFd as closeSocket,
  type FdWatcher,
  MSG_DONTWAIT,
  recvWithFds,
  SOCK_SEQPACKET,
  sendWithFds,
  socketpair,
  watchReadable,
} from "../../sys/socket.js";
import { Errno, KernelError } from "../errno.js";
import { decode, encode, fromWire, MAX_PACKET, type Reply, type Request, type RootSpec } from "./protocol.js";

export interface GoferOpened {
  /** A host descriptor owned by the caller (close it with sys/file close). */
  fd: number;
  stat: HostStat;
}

/** What a change answers: the stat of what it made or changed, when there is one. */
export interface GoferDone {
  stat?: HostStat;
}

type Answer = { fd?: number; stat?: HostStat };

/** A request without its root: the client adds it. */
export type RootedRequest = Request extends infer R ? (R extends Request ? Omit<R, "root"> : never) : never;

interface Pending {
  resolve: (r: Answer) => void;
  reject: (e: Error) => void;
}

/** Requests in flight at once; more wait in JS so a blocking send never stalls the loop. */
const MAX_IN_FLIGHT = 64;

const CLOSE_GRACE_MS = 2000;

const mainScript = fileURLToPath(new URL("./main.js", import.meta.url));

export class GoferClient {
  private readonly inFlight: Pending[] = [];
  private readonly queued: Array<{ req: Request; p: Pending }> = [];
  private readonly watcher: FdWatcher;
  private dead: Error | undefined;
  private sockClosed = false;
  private readonly exited: Promise<unknown>;

  private constructor(
    private readonly sock: number,
    private readonly child: ChildProcess,
    private readonly lastWords: () => string,
  ) {
    this.watcher = watchReadable(sock, () => this.drain());
    this.watcher.unref();
    this.exited = once(child, "exit");
    child.once("exit", (code, signal) => {
      const said = this.lastWords();
      this.die(`the gofer exited (${signal ?? code})${said ? `: ${said}` : ""}`);
    });
  }

  /**
   * Start a gofer confined to `rootfs` (a host directory: the bundle's rootfs, root 0) and
   * to each of `volumes` (bind mount sources, roots 1..n in that order).
   */
  static async start(rootfs: string, volumes: readonly RootSpec[] = []): Promise<GoferClient> {
    const roots: RootSpec[] = [{ path: rootfs, writable: false }, ...volumes];
    const [mine, theirs] = socketpair(SOCK_SEQPACKET);
    let child: ChildProcess;
    let stderrTail = "";
    try {
      child = spawn(process.execPath, [mainScript, String(process.pid), JSON.stringify(roots)], {
        stdio: ["ignore", "ignore", "pipe", theirs],
      });
      // Keep the gofer's last words for the error that reports its death.
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (s: string) => {
        stderrTail = (stderrTail + s).slice(-2000);
      });
      await once(child, "spawn");
      // The gofer alone must not keep the kernel alive: it dies with it (EOF, PDEATHSIG).
      child.unref();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
    } catch (e) {
      closeSocket(mine);
      throw new MoatError(
        "EIO",
        `cannot start the userkernel's gofer (${(e as Error).message}); check that node can run ${mainScript}`,
        { cause: e },
      );
    } finally {
      closeSocket(theirs);
    }
    const c = new GoferClient(mine, child, () => stderrTail.trim());
    // The gofer fails early for a bad rootfs; surface that instead of a later EIO.
    try {
      closeFd((await c.open(".", O_PATH | O_DIRECTORY)).fd);
    } catch (e) {
      await c.close();
      // The gofer says why it gave up (a missing source) before it exits: prefer its words.
      const said = stderrTail.trim().replace(/^moat gofer: /, "") || (e as Error).message;
      if (volumes.length > 0 && !said.includes(rootfs))
        throw new MoatError(
          "ENOENT",
          `the gofer cannot open the container's roots: ${said}; check that the bundle's rootfs and every bind mount source exist`,
          { cause: e },
        );
      throw new MoatError(
        "ENOENT",
        `the gofer cannot open the rootfs ${rootfs}: ${said}; check that the bundle's rootfs directory exists`,
        { cause: e },
      );
    }
    return c;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * Open `path` (relative to the rootfs) read-only. Rejects with KernelError carrying the
   * host errno (ENOENT, ENOTDIR, ELOOP, EROFS for a write flag...), or EIO if the gofer died.
   */
  async open(path: string, flags: number, follow = false, root = 0): Promise<GoferOpened> {
    const r = await this.call({ op: "open", path, flags, follow }, root);
    if (r.fd === undefined || !r.stat) throw new KernelError("EIO", "gofer: an open without a descriptor");
    return { fd: r.fd, stat: r.stat };
  }

  /**
   * Open (and with O_CREAT|O_EXCL create, owned by uid/gid) a file of a read-write root:
   * the descriptor may be written.
   */
  async openWrite(
    path: string,
    flags: number,
    root: number,
    create?: { mode: number; uid: number; gid: number },
  ): Promise<GoferOpened> {
    const r = await this.call({ op: "open", path, flags, follow: false, ...create }, root);
    if (r.fd === undefined || !r.stat) throw new KernelError("EIO", "gofer: an open without a descriptor");
    return { fd: r.fd, stat: r.stat };
  }

  /** A change to a read-write root (mkdir, symlink, link, unlink, rename, setattr). */
  async change(req: Exclude<RootedRequest, { op: "open" }>, root: number): Promise<GoferDone> {
    const r = await this.call(req, root);
    if (r.fd !== undefined) closeFd(r.fd);
    return r.stat ? { stat: r.stat } : {};
  }

  private call(req: RootedRequest, root: number): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const p = { resolve, reject };
      if (this.dead) return reject(this.dead);
      this.queued.push({ req: { ...req, root } as Request, p });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queued.length > 0 && this.inFlight.length < MAX_IN_FLIGHT && !this.dead) {
      const { req, p } = this.queued.shift()!;
      try {
        sendWithFds(this.sock, encode(req));
      } catch (e) {
        p.reject(new KernelError("EIO", `gofer: ${(e as Error).message}`));
        continue;
      }
      if (this.inFlight.length === 0) this.watcher.ref();
      this.inFlight.push(p);
    }
  }

  private drain(): void {
    while (this.inFlight.length > 0) {
      let msg: ReturnType<typeof recvWithFds>;
      try {
        msg = recvWithFds(this.sock, MAX_PACKET, MSG_DONTWAIT);
      } catch (e) {
        if (e instanceof SysError && (e.code === "EAGAIN" || e.code === "EINTR")) return;
        this.die(`the gofer socket failed: ${(e as Error).message}`);
        return;
      }
      if (msg.eof) {
        this.die("the gofer closed its socket");
        return;
      }
      const p = this.inFlight.shift()!;
      if (this.inFlight.length === 0) this.watcher.unref();
      let reply: Reply;
      try {
        reply = decode<Reply>(msg.data);
      } catch {
        for (const fd of msg.fds) closeFd(fd);
        p.reject(new KernelError("EIO", "gofer: malformed reply"));
        continue;
      }
      if (reply.ok && msg.fds.length <= 1) {
        const a: Answer = {};
        if (msg.fds.length === 1) a.fd = msg.fds[0]!;
        if (reply.stat) a.stat = fromWire(reply.stat);
        p.resolve(a);
      } else {
        for (const fd of msg.fds) closeFd(fd);
        const code = !reply.ok && reply.errno in Errno ? (reply.errno as ErrnoName) : "EIO";
        p.reject(new KernelError(code, "gofer"));
      }
    }
    this.pump();
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = new KernelError("EIO", why);
    for (const p of this.inFlight.splice(0)) p.reject(this.dead);
    for (const q of this.queued.splice(0)) q.p.reject(this.dead);
    this.watcher.stop();
  }

  /** Close the socket; the gofer sees EOF and exits. Resolves once it has. */
  async close(): Promise<void> {
    this.die("the gofer was closed");
    if (!this.sockClosed) {
      this.sockClosed = true;
      closeSocket(this.sock);
    }
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    // EOF makes it exit at once; a gofer stuck in a host call gets SIGKILL instead.
    const timer = setTimeout(() => this.child.kill("SIGKILL"), CLOSE_GRACE_MS);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
