// Imported first by every long-lived entry point (the CLI, the OCI monitor, the shim), before
// anything uses libuv's thread pool: the userkernel waits for each traced process that
// computes on a pool thread (platform/ptrace.ts), and libuv's default of 4 threads would let
// four busy container processes stall every other process, and every asynchronous file
// operation, of the same sandbox. The pool size is read once, when the pool first starts.
process.env.UV_THREADPOOL_SIZE ??= "64";
