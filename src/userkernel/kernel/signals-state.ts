// The signal dispositions of a process: one sigaction per signal. CLONE_SIGHAND shares the
// object between tasks; fork copies it; execve resets the caught ones to the default.
export interface SigAction {
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  mask: bigint;
}

export const SIG_DFL = 0n;
export const SIG_IGN = 1n;

export class SignalHandlers {
  readonly actions = new Map<number, SigAction>();

  /** The handler address, SIG_DFL or SIG_IGN. */
  handler(sig: number): bigint {
    return this.actions.get(sig)?.handler ?? SIG_DFL;
  }

  /** fork: the same dispositions in an object of the child's own. */
  copy(): SignalHandlers {
    const c = new SignalHandlers();
    for (const [sig, act] of this.actions) c.actions.set(sig, { ...act });
    return c;
  }

  /** execve: handlers cannot survive the old program; ignored signals stay ignored. */
  resetForExec(): void {
    for (const [sig, act] of [...this.actions]) if (act.handler !== SIG_IGN) this.actions.delete(sig);
  }
}
