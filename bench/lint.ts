// Benchmark (not a test): `safe-deploy lint` must grow linearly with a migration's length (line numbers
// from an index, not a re-scan per statement, which was quadratic: 20,000 statements took 11 s). Lints
// files of N, 2N and 4N statements; each doubling should cost about 2x (target <= 2.5x). Medians of 3.
import { lintSql } from "../src/core/migrations/lint";

const file = (n: number) =>
  "SET lock_timeout = '5s'; SET statement_timeout = '5min';\n" +
  "INSERT INTO t VALUES (1, 'x é');\n".repeat(n) +
  "DROP TABLE t;\n";

async function median(n: number): Promise<number> {
  const sql = file(n);
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    const found = await lintSql(sql, "bench.sql");
    runs.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (!found.some((f) => f.rule === "drop-table" && f.line === n + 2)) throw new Error("wrong finding");
  }
  return runs.sort((a, b) => a - b)[1];
}

async function main() {
  await median(1000); // warm-up: the parser's WebAssembly and the JIT
  const base = Number(process.env.BENCH_LINT_STATEMENTS ?? 10_000);
  console.log("statements  median_ms  ratio_to_half (target <= 2.5)");
  let prev: number | undefined;
  for (const n of [base, base * 2, base * 4]) {
    const ms = await median(n);
    const ratio = prev === undefined ? "-" : (ms / prev).toFixed(2);
    console.log(`${String(n).padStart(10)}  ${ms.toFixed(0).padStart(9)}  ${ratio.padStart(13)}`);
    prev = ms;
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
