// The guest's /init: a busybox shell that mounts the kernel filesystems, loads the
// drivers in modules.dep order, then starts the TypeScript agent on Node and stays
// PID 1 only to reap. Node cannot reap children it did not spawn, but processes orphaned
// in the guest are re-parented to PID 1; ash's `wait` collects every child with
// waitpid(-1), orphans included, until the agent itself exits, and then the guest powers off.
import { TCG_KERNEL_ARG } from "../hypervisor/qemu-cmdline.js";

/** The virtio-serial port name the host and guest agree on. */
export const AGENT_PORT_NAME = "moat.agent";

/** Where the initramfs lists module files to insmod, one per line, in load order. */
export const MODULE_LIST_PATH = "etc/moat/modules";

/** The host's Node binary, as placed in the guest. */
export const GUEST_NODE_PATH = "bin/node";
/** The esbuild bundle of src/agent/main.ts. */
export const GUEST_AGENT_PATH = "lib/moat/agent.cjs";
/** Where /init mounts the guest image (Node, its libraries, the agent; the first disk). */
export const GUEST_IMAGE_MOUNT = "moat";

export const INIT_SCRIPT = `#!/bin/sh
# moat guest init: set up, start the agent, reap orphans while it runs.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do
  insmod "$m" || echo "moat-init: insmod $m failed" >/dev/console
done </${MODULE_LIST_PATH}
mount -t erofs -o ro /dev/vda /${GUEST_IMAGE_MOUNT} || echo "moat-init: cannot mount the guest image /dev/vda" >/dev/console
ip link set lo up
# ${TCG_KERNEL_ARG} (the host adds it under TCG): V8 compiles no machine code, which TCG would
# then have to translate again; the agent's calls answer about twice as fast.
node_flags=
case " $(cat /proc/cmdline) " in *" ${TCG_KERNEL_ARG} "*) node_flags=--jitless ;; esac
# The agent and everything it starts are the guest's infrastructure: out of the OOM
# killer's way, as Kata's agent is (each container process resets this to its own).
echo -997 >/proc/self/oom_score_adj
/${GUEST_NODE_PATH} $node_flags /${GUEST_AGENT_PATH} ${AGENT_PORT_NAME} </dev/null >/dev/console 2>&1 &
wait
echo "moat-init: the agent exited; powering off" >/dev/console
poweroff -f
`;
