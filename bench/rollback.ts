// `npm run bench:rollback`: what replaying the writes made since a deploy (issue 20) adds to a
// rollback. For 10k and 100k committed row changes on a throwaway PostgreSQL at wal_level=logical:
// the baseline (pg_restore of the pre-deploy dump into a new database, as a rollback does today),
// the replay after it, the stream read alone, and the changes replayed per second. BENCH_ROUNDS
// (default 1) repeats each and takes the median; BENCH_CHANGES overrides the sizes (e.g. "10000").
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDatabaseUrl, type RunTarget } from "../src/core/backup/runner";
import {
  createReleaseSlot,
  dropReleaseSlot,
  readChanges,
  replayChanges,
  slotName,
} from "../src/core/changes";
import { PG_BIN, startPostgres } from "../test/helpers/postgres";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const SIZES = (process.env.BENCH_CHANGES ?? "10000,100000").split(",").map(Number);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const local: RunTarget = { runIn: "local" };

/**
 * CPU seconds used so far by the server (the postmaster, its reaped children, and its live or not yet
 * reaped ones: the replay's and the peek's backends) and by this process with its exited children
 * (psql). On 2 cores shared at a load of 15-25, wall times vary 2x between runs; CPU time far less.
 */
function cpu(dataDir: string): { server: number; client: number } {
  const stat = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    } catch {
      return undefined; // ended between the listing and the read: counted in its parent's total
    }
  };
  // Fields 14-17 of /proc/PID/stat (utime, stime, cutime, cstime), in clock ticks of 10 ms.
  const ticks = (f: string[] | undefined, n: number) =>
    (f ?? []).slice(11, 11 + n).reduce((a, b) => a + Number(b), 0) / 100;
  const postmaster = readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0];
  let server = ticks(stat(postmaster), 4);
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    const f = stat(pid);
    if (f?.[1] === postmaster) server += ticks(f, 2);
  }
  return { server, client: ticks(stat("self"), 4) };
}

const seconds = async (fn: () => Promise<unknown>) => {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
};

async function main() {
  const pg = await startPostgres({ walLevel: "logical" });
  const dir = mkdtempSync(join(tmpdir(), "sd-bench-rollback-"));
  const env = {
    ...process.env,
    PGPASSWORD: pg.password,
    PGHOST: pg.host,
    PGPORT: String(pg.port),
    PGUSER: pg.user,
  };
  try {
    console.log(
      "changes | restore (baseline) | replay | stream read alone | replayed/s | rollback time added | CPU server + client: restore; replay",
    );
    for (const n of SIZES) {
      const db = `bench_${n}`;
      await pg.createDatabase(db);
      // 100k customers and 200k orders before the deploy (pg_restore has something to do).
      await pg.query(
        `CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE, balance numeric(12,2) NOT NULL);
         CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, amount numeric(12,2) NOT NULL, note text);
         INSERT INTO customers (email, balance) SELECT 'c' || g || '@bench.test', g % 1000 FROM generate_series(1, 100000) g;
         INSERT INTO orders (customer_id, amount) SELECT 1 + g % 100000, g % 500 FROM generate_series(1, 200000) g;
         CREATE INDEX ON orders (customer_id);`,
        [],
        db,
      );
      const conn = parseDatabaseUrl(pg.url(db));
      const slot = slotName("bench", String(n));
      const s = await createReleaseSlot(local, conn, slot);
      const dump = join(dir, `${db}.dump`);
      execFileSync(join(PG_BIN, "pg_dump"), ["-Fc", `--snapshot=${s.snapshot}`, "-f", dump, db], { env });
      await s.close();
      // The app after the deploy: transactions of 5 row changes (2 order inserts, 2 balance
      // updates, 1 order delete), n changes in all.
      await pg.query(
        `DO $$ BEGIN FOR i IN 1..${n / 5} LOOP
           INSERT INTO orders (customer_id, amount, note) VALUES (1 + i % 100000, i % 300, 'after deploy'), (1 + (i * 7) % 100000, 1, NULL);
           UPDATE customers SET balance = balance + 1 WHERE id IN (1 + i % 100000, 1 + (i * 13) % 100000);
           DELETE FROM orders WHERE id = i;
           COMMIT;
         END LOOP; END $$;`,
        [],
        db,
      );
      const base: number[] = [];
      const replay: number[] = [];
      const read: number[] = [];
      const cpus: string[] = [];
      let applied = 0;
      for (let r = 0; r < ROUNDS; r++) {
        const target = `${db}_rb${r}`;
        await pg.createDatabase(target);
        const r0 = cpu(pg.dataDir);
        base.push(
          await seconds(async () =>
            execFileSync(join(PG_BIN, "pg_restore"), ["--no-owner", "-d", target, dump], { env }),
          ),
        );
        const c0 = cpu(pg.dataDir);
        const spent = (a: typeof c0, z: typeof c0) =>
          `${(z.server - a.server).toFixed(2)} s + ${(z.client - a.client).toFixed(2)} s`;
        replay.push(
          await seconds(async () => {
            const res = await replayChanges({
              target: local,
              live: conn,
              slot,
              startLsn: s.startLsn,
              into: parseDatabaseUrl(pg.url(target)),
              reportDir: dir,
            });
            applied = res.applied;
          }),
        );
        const c1 = cpu(pg.dataDir);
        cpus.push(`${spent(r0, c0)}; ${spent(c0, c1)}`);
        read.push(
          await seconds(async () => {
            for await (const t of readChanges({ target: local, conn, slot })) void t;
          }),
        );
        await pg.query(`DROP DATABASE ${target}`);
      }
      if (applied !== n) throw new Error(`replayed ${applied} changes, expected ${n}`);
      const b = median(base);
      const p = median(replay);
      console.log(
        `${n} | ${b.toFixed(2)} s | ${p.toFixed(2)} s | ${median(read).toFixed(2)} s | ${Math.round(n / p)} | +${((p / b) * 100).toFixed(0)}% (${p.toFixed(2)} s on ${b.toFixed(2)} s) | ${cpus.join(", ")}`,
      );
      await dropReleaseSlot(local, conn, slot);
    }
    console.log(
      `(median of ${ROUNDS} round(s); load average ${(await import("node:os")).loadavg()[0].toFixed(1)} at the end)`,
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
