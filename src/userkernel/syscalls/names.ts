// The syscall names live with the other Linux facts in spec/ (seccomp profiles use them too).
export { SYSCALL_NAMES, syscallName } from "../../spec/syscalls.js";
