// The layer rules of docs/architecture.md, as code. A folder may import only the
// folders listed for it here (and itself). Everything else is a lint error.
const allowed = {
  // front doors
  cli: ["oci", "isolation", "sandbox", "image", "spec", "sys", "vm", "userkernel"],
  oci: ["isolation", "sandbox", "image", "spec", "sys"],
  shim: ["isolation", "sandbox", "image", "spec", "ttrpc", "sys"],
  // selection: the only place that knows both backends
  isolation: ["vm", "userkernel", "sandbox", "image", "spec", "sys"],
  // backends
  vm: ["sandbox", "agent", "image", "spec", "ttrpc", "sys"],
  userkernel: ["sandbox", "image", "spec", "sys"],
  // shared middle
  sandbox: ["spec"],
  agent: ["spec", "ttrpc"],
  image: ["spec", "sys"],
  // leaves
  spec: [],
  ttrpc: [],
  sys: [],
};
const folders = Object.keys(allowed);
const forbidden = folders.map((from) => {
  const banned = folders.filter((to) => to !== from && !allowed[from].includes(to));
  return {
    name: `layer-${from}`,
    comment: `src/${from} may import only: ${allowed[from].join(", ") || "no other folder"}`,
    severity: "error",
    from: { path: `^src/${from}/` },
    to: { path: banned.length ? `^src/(${banned.join("|")})/` : "^$" },
  };
});
forbidden.push(
  {
    name: "koffi-only-in-sys",
    comment: "host calls go through src/sys; nothing else loads koffi",
    severity: "error",
    from: { pathNot: "^src/sys/" },
    to: { path: "node_modules/koffi" },
  },
  {
    name: "no-circular",
    severity: "error",
    from: {},
    to: { circular: true },
  },
  {
    name: "agent-no-host-modules",
    comment: "the agent runs in the guest: it bundles only its own code, spec, ttrpc and protobufjs",
    severity: "error",
    from: { path: "^src/agent/" },
    to: { dependencyTypes: ["npm"], pathNot: "node_modules/protobufjs/" },
  },
);
module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
