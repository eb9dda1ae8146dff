// The one event source for every traced stub thread of this Node process. All stubs live in
// one host process group; a single waitid(P_PGID, WNOWAIT) on libuv's threadpool peeks at
// the next state change in the group without consuming it, and the main thread then
// consumes that one thread's status with waitpid(tid, WNOHANG) and hands it to whoever
// waits for that thread. So:
// - a computing tracee holds no pool thread (one peek serves every stub, however many run);
// - a peek never steals a stop from the synchronous waitpid of an injected system call: the
//   status stays in the host until a waitpid of that very thread takes it;
// - nothing waits for pid -1, so libuv's own children (the gofer) are never reaped by us.
import { SysError } from "../../sys/libc.js";
import {
  P_PGID,
  type SpawnFileAction,
  spawn,
  WALL,
  type WaitStatus,
  WEXITED,
  WNOHANG,
  WNOWAIT,
  WSTOPPED,
  waitidAsync,
  waitpidSync,
} from "../../sys/process.js";

const WUNTRACED = 2;
const SIGKILL = 9;

class StubEvents {
  /** The host process group every stub joins; undefined until the first stub. */
  private pgid: number | undefined;
  private readonly waiters = new Map<number, (st: WaitStatus) => void>();
  /**
   * Stubs started and not yet reaped. While one lives, the group's id cannot be reused by
   * the host for another group; once none does, the next stub starts a new group rather
   * than join whatever group might by then have that number.
   */
  private readonly members = new Set<number>();
  private peeking = false;
  private emptyPeeks = 0;

  /** Start a stub process in the stubs' group (a new group when there is none or it is gone). */
  spawn(path: string, argv: string[], actions: SpawnFileAction[]): number {
    if (this.pgid !== undefined && this.members.size > 0) {
      try {
        const pid = spawn(path, argv, [], actions, { pgroup: this.pgid });
        this.members.add(pid);
        return pid;
      } catch (e) {
        // The group is gone after all (EPERM from setpgid): start a new one below.
        if (!(e instanceof SysError)) throw e;
      }
    }
    const pid = spawn(path, argv, [], actions, { ownGroup: true });
    this.pgid = pid;
    this.members.add(pid);
    return pid;
  }

  /** Stub `pid` is reaped, every thread of it. */
  reaped(pid: number): void {
    this.members.delete(pid);
  }

  /** The next status of thread `tid`; the caller has just resumed it. */
  wait(tid: number): Promise<WaitStatus> {
    return new Promise((resolve) => {
      this.waiters.set(tid, resolve);
      this.peek();
    });
  }

  /** A status of `tid` consumed elsewhere (a synchronous reap): give it to its waiter, if any. */
  deliver(tid: number, st: WaitStatus): void {
    const w = this.waiters.get(tid);
    if (w) {
      this.waiters.delete(tid);
      w(st);
    }
  }

  private peek(): void {
    if (this.peeking || this.waiters.size === 0 || this.pgid === undefined) return;
    this.peeking = true;
    const pgid = this.pgid;
    waitidAsync(P_PGID, pgid, WEXITED | WSTOPPED | WNOWAIT | WALL).then(
      (r) => {
        this.peeking = false;
        if (r.pid > 0) this.consume(r.pid);
        this.again();
      },
      () => {
        this.peeking = false;
        // ECHILD: nothing of ours is in that group any more. Whoever still waits on it waits
        // for a thread that is gone (or that moved to a newer group, which a new peek covers).
        if (pgid === this.pgid)
          for (const [tid, w] of [...this.waiters]) {
            const st = this.reapQuietly(tid);
            if (!st) continue; // alive after all (an interrupted wait): keep waiting
            this.waiters.delete(tid);
            w(st);
          }
        this.emptyPeeks++;
        this.again();
      },
    );
  }

  private again(): void {
    // A peek that finds a status already taken by a synchronous waitpid is normal once; a
    // run of them would spin, so back off a little.
    if (this.emptyPeeks > 3) {
      this.emptyPeeks = 0;
      setTimeout(() => this.peek(), 1);
    } else this.peek();
  }

  private consume(tid: number): void {
    let st: WaitStatus;
    try {
      st = waitpidSync(tid, WALL | WNOHANG | WUNTRACED);
    } catch {
      this.emptyPeeks++;
      return; // reaped meanwhile
    }
    if (st.kind === "none") {
      this.emptyPeeks++;
      return;
    }
    this.emptyPeeks = 0;
    // Every thread that can change state has a waiter by now: switchTo registers it in the
    // same synchronous stretch that resumed the thread. A status nobody waits for is a death
    // seen before release() reaps it, which has nothing more to tell.
    this.deliver(tid, st);
  }

  /** The status of a thread the group wait no longer sees; undefined if it still runs. */
  private reapQuietly(tid: number): WaitStatus | undefined {
    try {
      const st = waitpidSync(tid, WALL | WNOHANG | WUNTRACED);
      return st.kind === "none" ? undefined : st;
    } catch {
      // Already reaped: report what a thread that vanished from under us is, killed.
      return { pid: tid, kind: "signaled", signal: SIGKILL, core: false };
    }
  }

  /** Threads waited for right now (tests, diagnostics). */
  get waiting(): number {
    return this.waiters.size;
  }
}

/** The event source of this process: one for all stubs, whoever starts them. */
export const stubEvents = new StubEvents();
