#!/usr/bin/env node
// containerd-shim-moat-v2: the containerd shim v2 front door. Not built yet: it says so and
// fails, so containerd reports a clear error instead of hanging.
process.stderr.write(
  "containerd-shim-moat-v2: not implemented yet (the shim v2 front door is still being built)\n",
);
process.exitCode = 1;
