// Imported first by every long-lived entry point (the CLI, the OCI monitor, the shim), before
// anything uses libuv's thread pool. The userkernel's stubs hold one pool thread between them
// (platform/events.ts: one waiter for every traced thread), but the file operations of many
// container processes are served on the pool too, and a blocking one (a read of a FIFO, a
// slow mount) would, with libuv's default of 4 threads, queue all the others behind it.
// The pool size is read once, when the pool first starts.
process.env.UV_THREADPOOL_SIZE ??= "64";
