// Signal names and numbers for x86-64 Linux, shared by every front door and backend.
// Front doors accept a name ("TERM", "SIGTERM") or a number ("15"), as runc does.
import { MoatError } from "../spec/errors.js";

export const SignalNumbers = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
} as const;

export type Signal = keyof typeof SignalNumbers;

export function parseSignal(text: string): Signal {
  const t = text.trim().toUpperCase();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    const name = (Object.keys(SignalNumbers) as Signal[]).find((k) => SignalNumbers[k] === n);
    if (name) return name;
  } else {
    const name = (t.startsWith("SIG") ? t : `SIG${t}`) as Signal;
    if (name in SignalNumbers) return name;
  }
  throw new MoatError(
    "EINVAL",
    `unknown signal "${text}": use a name such as TERM or KILL, or a number 1-31`,
  );
}

export function signalName(n: number): Signal | undefined {
  return (Object.keys(SignalNumbers) as Signal[]).find((k) => SignalNumbers[k] === n);
}
