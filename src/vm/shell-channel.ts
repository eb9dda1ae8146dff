// The host end of the stand-in guest init's line protocol (see assets/init-script.ts):
// wait for "READY", send one command line, read its output up to "EXIT <code>". It
// exists to prove the virtio-serial channel and is replaced by the agent's ttrpc API.
import { MoatError } from "../spec/errors.js";
import type { RunningVm } from "./hypervisor/hypervisor.js";
import { describeExit } from "./hypervisor/qemu.js";

export interface ShellResult {
  readonly output: string;
  readonly exitCode: number;
}

export class ShellChannel {
  private text = "";
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly vm: RunningVm) {
    vm.agent.setEncoding("utf8");
    vm.agent.on("data", (d: string) => {
      this.text += d;
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    vm.agent.on("end", end);
    vm.agent.on("close", end);
    vm.agent.on("error", end);
    void vm.wait().then(end);
  }

  /** Wait until the guest init has opened its port; a dead or hung guest is a MoatError. */
  static async open(vm: RunningVm, timeoutMs: number): Promise<ShellChannel> {
    const c = new ShellChannel(vm);
    await c.until(/^READY\n/, timeoutMs, "start its agent");
    c.text = c.text.slice("READY\n".length);
    return c;
  }

  /** Run one command line in the guest with sh; the guest powers off afterwards. */
  async run(command: string, timeoutMs: number): Promise<ShellResult> {
    if (command.includes("\n")) throw new MoatError("EINVAL", "the stand-in guest shell takes a single line");
    this.vm.agent.write(`${command}\n`);
    const m = await this.until(/EXIT (\d+)\n$/, timeoutMs, "finish the command");
    const output = this.text.slice(0, m.index);
    this.text = "";
    return { output, exitCode: Number(m[1]) };
  }

  private async until(re: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.text);
      if (m) return m;
      if (this.ended) {
        const x = await this.vm.wait();
        throw new MoatError(
          "EIO",
          `the guest of VM ${this.vm.id} stopped before it could ${what} (QEMU ${describeExit(x)}).\n` +
            `${this.vm.diagnostics()}\nIf the guest kernel or initramfs is damaged, delete moat's guest asset directory so it is rebuilt.`,
        );
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        await this.vm.kill();
        throw new MoatError(
          "ETIMEDOUT",
          `the guest of VM ${this.vm.id} did not ${what} within ${timeoutMs} ms; the VM was killed.\n${this.vm.diagnostics()}`,
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }
}
