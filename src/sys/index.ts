export * from "./errno.js";
export * from "./fs.js";
export { check, lastErrno, SysError } from "./libc.js";
