// Progress on long work (issue 16): a terminal gets a live line, a pipe or CI gets nothing extra.
// Hand-rolled: one line rewritten with \r; cli-progress would add a dependency for this one line.

/** Whether progress is shown: stderr is a terminal and not under CI (`CI=true`). */
export function showProgress(stream: NodeJS.WriteStream = process.stderr): boolean {
  return !!stream.isTTY && process.env.CI !== "true" && process.env.CI !== "1";
}

const mb = (n: number) => `${(n / 1_048_576).toFixed(1)} MB`;

/**
 * A progress line for `label` (bytes done, rate, elapsed), at most 5 updates a second, ended by `done()`
 * with a newline. A no-op when {@link showProgress} is false.
 */
export function byteProgress(label: string, stream: NodeJS.WriteStream = process.stderr) {
  if (!showProgress(stream)) return { update: (_bytes: number) => {}, done: () => {} };
  const t0 = Date.now();
  let last = 0;
  let bytes = 0;
  const line = () => {
    const s = Math.max((Date.now() - t0) / 1000, 0.001);
    stream.write(`\r${label}: ${mb(bytes)}, ${mb(bytes / s)}/s, ${s.toFixed(1)} s elapsed\x1b[K`);
  };
  return {
    update: (b: number) => {
      bytes = b;
      if (Date.now() - last < 200) return;
      last = Date.now();
      line();
    },
    done: () => {
      line();
      stream.write("\n");
    },
  };
}
