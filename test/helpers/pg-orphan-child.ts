// Child of postgres.test.ts: starts a throwaway server, prints its postmaster pid, then ends as told
// (argv[2]): "hang" waits to be killed, "throw" dies of an uncaught error.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startPostgres } from "./postgres";

void (async () => {
  const pg = await startPostgres();
  const pid = Number(readFileSync(join(pg.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  process.stdout.write(`${pid}\n`);
  if (process.argv[2] === "throw")
    setImmediate(() => {
      throw new Error("a test file's uncaught error");
    });
  else setInterval(() => {}, 1 << 30);
})();
