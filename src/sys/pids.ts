// Whether a process id names a live process: the check that decides whether a leftover
// named after its maker's pid (a lease, a temp directory) can be removed. No libc needed:
// Node's kill(pid, 0) asks the kernel without sending anything.

/** True while `pid` exists, also when it belongs to a user we may not signal (EPERM). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
