import { readFile, writeFile } from "node:fs/promises";
import { orchestratorCases } from "./orchestrator-cases";

// The cases of orchestrator.test.ts without PostgreSQL (issue 22): over this model of the database, whose
// backups are real files, a run takes 1-2 s instead of 35-40 s, so `npm run mutate` keys it first for
// `release/orchestrator` and only a surviving mutant pays for the real server's file.
let db = { version: "002", notes: 50, title: false };

orchestratorCases({
  tmpPrefix: "sd-orch-fast-",
  start: async () => {},
  stop: async () => {},
  reset: async () => {
    db = { version: "002", notes: 50, title: false };
  },
  migrate: async () => {
    db = { ...db, title: true, version: "003" };
  },
  destroy: async () => {
    db = { ...db, notes: 10, version: "003" };
  },
  snapshot: async () => JSON.stringify(db),
  schemaVersion: async () => db.version,
  dump: (file) => writeFile(file, JSON.stringify(db)),
  restore: async (file) => {
    db = JSON.parse(await readFile(file, "utf8")) as typeof db;
  },
});
