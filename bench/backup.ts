// `npm run bench:backup`: safe-deploy's backup and restore against bare pg_dump/pg_restore on one
// pgbench database (scale from BENCH_SCALE, default 50 ≈ 750 MB) on a throwaway server. Prints ratios.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PG_BIN, startPostgres } from "../test/helpers/postgres";

const BIN = join(__dirname, "..", "bin", "safe-deploy");
const scale = Number(process.env.BENCH_SCALE ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): { seconds: number; out: string; maxRssKb: number } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync("/usr/bin/time", ["-f", "MAXRSS %M", cmd, ...args], {
    env,
    encoding: "utf8",
    maxBuffer: 1 << 26,
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  const m = /MAXRSS (\d+)/.exec(r.stderr);
  return { seconds, out: r.stdout, maxRssKb: m ? Number(m[1]) : NaN };
}

async function main() {
  // The CLI as installed runs its bundle (`npm ci` builds it); bin/safe-deploy falls back to compiling
  // the TypeScript through tsx (about 0.6 s more a start) once anything under src/ is newer than the
  // bundle, which after an edit it always is: build it first, so the figures are the installed tool's.
  execFileSync("npm", ["run", "--silent", "build"], { cwd: join(__dirname, ".."), stdio: "inherit" });
  console.log("CLI: dist/safe-deploy.cjs, built now");
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), "sd-bench-"));
  try {
    const url = await pg.createDatabase("bench");
    const env = {
      ...process.env,
      PGPASSWORD: pg.password,
      PGHOST: "127.0.0.1",
      PGPORT: String(pg.port),
      PGUSER: pg.user,
    };
    console.log(`pgbench -i -s ${scale} ...`);
    execFileSync(join(PG_BIN, "pgbench"), ["-i", "-q", "-s", String(scale), "bench"], {
      env,
      stdio: "ignore",
    });
    const [sz] = await pg.query<{ s: string }>("SELECT pg_size_pretty(pg_database_size('bench')) AS s");
    console.log(`database size ${sz.s}`);

    // Each contender runs ROUNDS times, interleaved, after `sync` (so one run's dirty pages are not
    // written back during the next one's), and its median counts.
    const sdEnv = { ...process.env, DATABASE_URL: url };
    const bares: number[] = [];
    const defs: number[] = [];
    // The producer's floor: pg_dump with nothing to compress or write. Any create that runs pg_dump
    // takes at least this long, so `floor / pg_dump -Fc` bounds the best `create / pg_dump -Fc`.
    const floors: number[] = [];
    const ourRuns: Array<ReturnType<typeof timed>> = [];
    for (let i = 0; i < ROUNDS; i++) {
      execFileSync("sync");
      bares.push(
        timed(join(PG_BIN, "pg_dump"), ["-Fc", "-Z0", "-f", join(dir, "bare.dump"), "bench"], env).seconds,
      );
      execFileSync("sync");
      defs.push(
        timed(join(PG_BIN, "pg_dump"), ["-Fc", "-f", join(dir, "default.dump"), "bench"], env).seconds,
      );
      floors.push(
        timed(join(PG_BIN, "pg_dump"), ["-Fc", "-Z0", "--no-sync", "-f", "/dev/null", "bench"], env).seconds,
      );
      execFileSync("sync");
      ourRuns.push(
        timed(BIN, ["backup", "create", "--dir", join(dir, `sd${i}`), "--label", "manual"], sdEnv),
      );
    }
    const bare = { seconds: median(bares) };
    const def = { seconds: median(defs) };
    const ours = { ...ourRuns[ROUNDS - 1], seconds: median(ourRuns.map((r) => r.seconds)) };
    ours.maxRssKb = Math.max(...ourRuns.map((r) => r.maxRssKb));
    console.log(
      `runs (s): bare ${bares.map((x) => x.toFixed(2)).join(" ")}; pg_dump -Fc ${defs.map((x) => x.toFixed(2)).join(" ")}; ` +
        `create ${ourRuns.map((r) => r.seconds.toFixed(2)).join(" ")}`,
    );
    const gz = spawnSync("bash", ["-c", `"${PG_BIN}/pg_dump" bench | gzip -6 > "${dir}/plain.sql.gz"`], {
      env,
    });
    if (gz.status !== 0) throw new Error("pg_dump | gzip failed");
    const gzSize = statSync(join(dir, "plain.sql.gz")).size;

    const file = ours.out.trim().split("\n").pop()!;
    const ourSize = statSync(file).size;

    // Restores interleaved too, ROUNDS times (one sample each swung 0.96-1.40 under load): pg_restore -j2
    // into a fresh database, a safety-labelled create (what the restore takes first), then the restore.
    const restoreRuns: Array<{ pgr: number; safety: number; restore: number; rss: number; load: number }> =
      [];
    for (let i = 0; i < ROUNDS; i++) {
      execFileSync(join(PG_BIN, "dropdb"), ["--if-exists", "restored"], { env });
      execFileSync(join(PG_BIN, "createdb"), ["restored"], { env });
      execFileSync("sync");
      const p = timed(join(PG_BIN, "pg_restore"), ["-j2", "-d", "restored", join(dir, "bare.dump")], env);
      // The restore's floor: what it runs to load this database's data (one table holds all but 0.01% of
      // it, so the archive streams into one pg_restore), without its checks, row counts and swap.
      execFileSync(join(PG_BIN, "dropdb"), ["--if-exists", "loaded"], { env });
      execFileSync(join(PG_BIN, "createdb"), ["loaded"], { env });
      execFileSync("sync");
      const load = timed(
        "bash",
        [
          "-c",
          'set -o pipefail; zstd -q -d --long=27 -c "$1" | "$2/pg_restore" --exit-on-error -d loaded',
          "-",
          file,
          PG_BIN,
        ],
        env,
      );
      execFileSync("sync");
      const sf = timed(
        BIN,
        ["backup", "create", "--dir", join(dir, `safety-${i}`), "--label", "safety"],
        sdEnv,
      );
      execFileSync("sync");
      const rs = timed(BIN, ["backup", "restore", file, "--yes", "--dir", join(dir, `safety2-${i}`)], sdEnv);
      restoreRuns.push({
        pgr: p.seconds,
        safety: sf.seconds,
        restore: rs.seconds,
        rss: rs.maxRssKb,
        load: load.seconds,
      });
      rmSync(join(dir, `safety-${i}`), { recursive: true, force: true });
      rmSync(join(dir, `safety2-${i}`), { recursive: true, force: true });
    }
    const pgr = { seconds: median(restoreRuns.map((x) => x.pgr)) };
    const safety = { seconds: median(restoreRuns.map((x) => x.safety)) };
    const restore = {
      seconds: median(restoreRuns.map((x) => x.restore)),
      maxRssKb: Math.max(...restoreRuns.map((x) => x.rss)),
    };
    const restoreRatios = restoreRuns.map((x) => (x.restore - x.safety) / x.pgr);
    const restoreOnly = median(restoreRuns.map((x) => x.restore - x.safety));

    const r = (x: number) => x.toFixed(2);
    // The goals of issue 18, printed beside each figure with whether this run met them.
    const goal = (x: number, max: number) => `${r(x)}  (goal <= ${r(max)}: ${x <= max ? "met" : "NOT met"})`;
    console.log(
      `bare pg_dump -Fc -Z0: ${r(bare.seconds)} s; pg_dump -Fc: ${r(def.seconds)} s, ${statSync(join(dir, "default.dump")).size} B`,
    );
    console.log(
      `pg_dump | gzip -6: ${gzSize} B; safe-deploy backup create: ${r(ours.seconds)} s, ${ourSize} B, peak RSS ${(ours.maxRssKb / 1024).toFixed(0)} MB`,
    );
    console.log(`create / bare -Z0        = ${r(ours.seconds / bare.seconds)}`);
    console.log(`create / pg_dump -Fc     = ${goal(ours.seconds / def.seconds, 1.0)}`);
    console.log(
      `floor: pg_dump -Fc -Z0 -f /dev/null ${r(median(floors))} s = ${r(median(floors) / def.seconds)} x pg_dump -Fc (no create that runs pg_dump can be faster)`,
    );
    console.log(`size / (pg_dump|gzip -6) = ${goal(ourSize / gzSize, 0.35)}`);
    console.log(`peak RSS of create       = ${(ours.maxRssKb / 1024).toFixed(0)} MB  (target <= 150)`);
    console.log(
      `restore (${r(restore.seconds)} s) - its safety backup (${r(safety.seconds)} s) = ${r(restoreOnly)} s; ` +
        `pg_restore -j2 ${r(pgr.seconds)} s (medians of ${ROUNDS}); ratio = ${goal(median(restoreRatios), 1.0)} ` +
        `(each round: ${restoreRatios.map(r).join(", ")}); peak RSS ${(restore.maxRssKb / 1024).toFixed(0)} MB`,
    );
    // The restore takes its safety backup while it loads (issue 18), so "minus its safety backup" above
    // counts the part of the load the dump hid: the whole restore against the same two steps by hand.
    const byHand = def.seconds + pgr.seconds;
    console.log(
      `whole restore, safety backup included: ${r(restore.seconds)} s; by hand, pg_dump -Fc of the live database ` +
        `then pg_restore -j2: ${r(def.seconds)} + ${r(pgr.seconds)} = ${r(byHand)} s; ratio ${r(restore.seconds / byHand)}`,
    );
    const loads = restoreRuns.map((x) => x.load / x.pgr);
    console.log(
      `restore floor: zstd -d | pg_restore (what the restore runs here) ${r(median(restoreRuns.map((x) => x.load)))} s = ` +
        `${r(median(loads))} x pg_restore -j2 (each round: ${loads.map(r).join(", ")}); the rest of the restore ` +
        "(checksum, row counts, carried grants, swap, CLI start) comes on top",
    );
  } finally {
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
