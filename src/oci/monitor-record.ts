// The container's record (state.json) as the monitor holds it, and the monitor's one way to
// change it. Kept apart because the record is what every other runc command reads: each
// change goes through updateRecord (under its lock, to a temp path and renamed) and the
// monitor's copy is always what was last written.

import { id, root } from "./monitor-context.js";
import { type ContainerRecord, readRecord, updateRecord } from "./state.js";

export let record: ContainerRecord;

export async function loadRecord(): Promise<void> {
  record = await readRecord(root, id);
}

export async function setStatus(change: Partial<ContainerRecord>): Promise<void> {
  record = await updateRecord(root, id, (r) => ({ ...r, ...change }));
}
