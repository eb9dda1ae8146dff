// The guest's PID 1 for now. It is a deliberately tiny stand-in whose only job is to
// prove the host<->guest channel end to end: a later step replaces it with the
// TypeScript agent running on Node. Protocol on the virtio-serial port `moat.agent`:
// the guest writes "READY", the host writes one command line, the guest runs it with
// sh and writes its output (stdout and stderr) followed by "EXIT <code>", then powers off.

/** The virtio-serial port name the host and guest agree on. */
export const AGENT_PORT_NAME = "moat.agent";

/** Where the initramfs lists module files to insmod, one per line, in load order. */
export const MODULE_LIST_PATH = "etc/moat/modules";

export const INIT_SCRIPT = `#!/bin/sh
# moat stand-in init: proves the virtio-serial channel; replaced by the TypeScript agent.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r m; do
  insmod "$m" || echo "moat-init: insmod $m failed" >/dev/console
done </${MODULE_LIST_PATH}
port=
i=0
while [ -z "$port" ] && [ $i -lt 200 ]; do
  for n in /sys/class/virtio-ports/*/name; do
    if [ -r "$n" ] && [ "$(cat "$n")" = "${AGENT_PORT_NAME}" ]; then
      d=/dev/\${n#/sys/class/virtio-ports/}
      d=\${d%/name}
      [ -c "$d" ] && port=$d
    fi
  done
  [ -z "$port" ] && sleep 0.05
  i=$((i + 1))
done
if [ -z "$port" ]; then
  echo "moat-init: no virtio-serial port named ${AGENT_PORT_NAME}" >/dev/console
  poweroff -f
fi
exec 3<>"$port"
echo READY >&3
read -r cmd <&3
sh -c "$cmd" >&3 2>&1 </dev/null
echo "EXIT $?" >&3
exec 3>&-
poweroff -f
`;
