// One line per build step for a person watching a terminal; silence for scripts and logs.
export type ProgressFn = (step: string) => void;

export function defaultProgress(stream: NodeJS.WriteStream = process.stderr): ProgressFn {
  if (!stream.isTTY) return () => {};
  return (step) => {
    stream.write(`moat: guest assets: ${step}\n`);
  };
}
