// Run records: what a run makes is written down BEFORE it is made, so that whoever finds the run's
// owner dead (SIGKILLed, crashed, its terminal gone) can undo exactly that, and nothing else.
//
//   ROOT/runs/<id>.json          the record: its owner (pid + start time), the directories, mount
//                                points and files it makes, the helper processes it started
//   ROOT/runs/<id>.json.<pid>.tmp  a record being written (renamed over the record)
//
// The owner updates its record as it goes and removes it last, after everything it names is
// gone. reapDeadRuns() (called by every moat entry point) takes each record whose owner is dead
// (no such pid, or the pid now names another process: the start times differ): it kills the
// recorded helpers (start time checked), detaches the mounts deepest first, removes the
// directories only once nothing is mounted under them (a bind that would not detach may be a
// volume: see mounts.ts), removes the files, and then the record. A live owner's record is never
// touched. The record's `info` is the front door's (moat ps shows it); this module reads none of it.
import * as fs from "node:fs";
import * as path from "node:path";
import { mountsUnder, unmountAll } from "./mounts.js";
import { type ProcessRef, processStart, refAlive, selfRef } from "./pids.js";

export interface RunRecord {
  version: 1;
  id: string;
  owner: ProcessRef;
  /** ISO time the run began. */
  created: string;
  /**
   * Directories the run makes (real paths). Each one's temp siblings (`DIR.moat-tmp-*`, how moat
   * writes a directory before renaming it into place) are the run's too.
   */
  dirs: string[];
  /** Mount points the run makes (also found again under `dirs` from the host's mount table). */
  mounts: string[];
  /** Files the run makes outside its dirs (an image-store lease, a control socket); FILE.* too. */
  files: string[];
  /** Helper processes it started (QEMU, passt, the gofer, stubs), as far as it saw them. */
  helpers: ProcessRef[];
  /** The front door's own fields (image, command, status, ...), opaque here. */
  info: Record<string, unknown>;
}

export const runsDir = (root: string): string => path.join(root, "runs");
const recordFile = (root: string, id: string): string => path.join(runsDir(root), `${id}.json`);
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const TMP_RE = /^(.+)\.json\.(\d+)\.tmp$/;

/** Write to a temp path and rename: a reader sees the old record or the new, never half of one. */
function writeRecord(root: string, rec: RunRecord): void {
  const file = recordFile(root, rec.id);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(rec), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * The owner's handle on its record. Writes are synchronous on purpose: a step's record is on disk
 * before the step begins, whatever happens to this process after the call returns.
 */
export class RunRecorder {
  private constructor(
    readonly root: string,
    private rec: RunRecord,
  ) {}

  /** Record a new run owned by this process (its id must be new). */
  static begin(
    root: string,
    id: string,
    made: Partial<Pick<RunRecord, "dirs" | "mounts" | "files" | "info">> = {},
  ): RunRecorder {
    if (!ID_RE.test(id)) throw new Error(`run id "${id}" is not a valid record name`);
    fs.mkdirSync(runsDir(root), { recursive: true, mode: 0o700 });
    const rec: RunRecord = {
      version: 1,
      id,
      owner: selfRef(),
      created: new Date().toISOString(),
      dirs: made.dirs ?? [],
      mounts: made.mounts ?? [],
      files: made.files ?? [],
      helpers: [],
      info: made.info ?? {},
    };
    const r = new RunRecorder(root, rec);
    writeRecord(root, rec);
    return r;
  }

  get record(): Readonly<RunRecord> {
    return this.rec;
  }

  /** Change the record and write it at once. */
  update(change: (rec: RunRecord) => void): void {
    const next = structuredClone(this.rec);
    change(next);
    this.rec = next;
    writeRecord(this.root, next);
  }

  /** Add helpers (pids with start times) not yet recorded; ones that ended are dropped. */
  noteHelpers(found: ProcessRef[]): void {
    const known = this.rec.helpers.filter(refAlive);
    const fresh = found.filter((f) => !known.some((k) => k.pid === f.pid && k.start === f.start));
    if (fresh.length === 0 && known.length === this.rec.helpers.length) return;
    this.update((r) => {
      r.helpers = [...known, ...fresh];
    });
  }

  /** The run is over and everything it named is gone: remove the record, last. */
  end(): void {
    fs.rmSync(recordFile(this.root, this.rec.id), { force: true });
  }
}

/** Every readable record under ROOT/runs (none, quickly, when there is no such directory). */
export function listRunRecords(root: string): RunRecord[] {
  let names: string[];
  try {
    names = fs.readdirSync(runsDir(root));
  } catch {
    return [];
  }
  const out: RunRecord[] = [];
  for (const n of names) {
    if (!n.endsWith(".json")) continue;
    const rec = readRunRecord(root, n.slice(0, -5));
    if (rec) out.push(rec);
  }
  return out;
}

export function readRunRecord(root: string, id: string): RunRecord | undefined {
  if (!ID_RE.test(id)) return undefined;
  try {
    const rec = JSON.parse(fs.readFileSync(recordFile(root, id), "utf8")) as RunRecord;
    return rec.version === 1 && rec.id === id && rec.owner ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Is the record's owner still the process that wrote it? */
export function ownerAlive(rec: RunRecord): boolean {
  return refAlive(rec.owner);
}

export interface ReapReport {
  id: string;
  /** What was undone, for --debug. */
  done: string[];
  /** What could not be undone (then the record stays, for the next try). */
  failed: string[];
}

/** A directory's temp siblings (DIR.moat-tmp-*): a directory being made before its rename. */
function tempSiblings(dir: string): string[] {
  return siblingsStartingWith(dir, ".moat-tmp-");
}

function siblingsStartingWith(p: string, suffix: string): string[] {
  const parent = path.dirname(p);
  const prefix = `${path.basename(p)}${suffix}`;
  try {
    return fs
      .readdirSync(parent)
      .filter((n) => n.startsWith(prefix))
      .map((n) => path.join(parent, n));
  } catch {
    return [];
  }
}

/** Undo what a dead owner's record names, then remove the record (only if all of it is gone). */
export function reapRun(root: string, rec: RunRecord): ReapReport {
  const report: ReapReport = { id: rec.id, done: [], failed: [] };
  // Helpers first: a live QEMU or gofer holds the mounts and files below open.
  for (const h of rec.helpers ?? []) {
    if (!refAlive(h)) continue;
    try {
      process.kill(h.pid, "SIGKILL");
      report.done.push(`killed helper ${h.pid}`);
    } catch (e) {
      report.failed.push(`kill helper ${h.pid}: ${(e as Error).message}`);
    }
  }
  const dirs = (rec.dirs ?? []).flatMap((d) => [d, ...tempSiblings(d)]);
  const points = new Set<string>(rec.mounts ?? []);
  for (const d of dirs) for (const m of mountsUnder(d)) points.add(m);
  const mounted = [...points].filter((p) => mountsUnder(p).includes(p));
  if (mounted.length) {
    // Deepest first: a mount on top of another comes off before the one below it.
    unmountAll(mounted.sort((a, b) => b.length - a.length));
    report.done.push(`unmounted ${mounted.join(", ")}`);
  }
  for (const d of dirs) {
    const left = mountsUnder(d);
    if (left.length) {
      report.failed.push(`${d} still has ${left.join(", ")} mounted: unmount by hand, then remove it`);
      continue;
    }
    try {
      if (fs.existsSync(d)) {
        fs.rmSync(d, { recursive: true, force: true });
        report.done.push(`removed ${d}`);
      }
    } catch (e) {
      report.failed.push(`remove ${d}: ${(e as Error).message}`);
    }
  }
  // A file's temp siblings (FILE.<suffix>) too: write-file-atomic writes beside it, then renames.
  const files = (rec.files ?? []).flatMap((f) => [f, ...siblingsStartingWith(f, ".")]);
  for (const f of files) {
    try {
      if (fs.existsSync(f)) {
        fs.rmSync(f, { force: true });
        report.done.push(`removed ${f}`);
      }
    } catch (e) {
      report.failed.push(`remove ${f}: ${(e as Error).message}`);
    }
  }
  if (report.failed.length === 0) fs.rmSync(recordFile(root, rec.id), { force: true });
  return report;
}

/**
 * Reap every run under ROOT whose owner is dead. Cheap when there is nothing to do (one readdir
 * of a directory that is usually empty or absent). Never throws: it reports.
 */
export function reapDeadRuns(root: string): ReapReport[] {
  let names: string[];
  try {
    names = fs.readdirSync(runsDir(root));
  } catch {
    return [];
  }
  const reports: ReapReport[] = [];
  for (const n of names) {
    // A record half-written by a writer that died: the record it was replacing is still there.
    const tmp = TMP_RE.exec(n);
    if (tmp) {
      if (processStart(Number(tmp[2])) === undefined) fs.rmSync(path.join(runsDir(root), n), { force: true });
      continue;
    }
    if (!n.endsWith(".json")) continue;
    const rec = readRunRecord(root, n.slice(0, -5));
    if (!rec || ownerAlive(rec)) continue;
    try {
      reports.push(reapRun(root, rec));
    } catch (e) {
      reports.push({ id: rec.id, done: [], failed: [(e as Error).message] });
    }
  }
  return reports;
}
