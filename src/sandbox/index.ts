export * from "../spec/errors.js";
export * from "./sandbox.js";
export * from "./signals.js";
export * from "./types.js";
