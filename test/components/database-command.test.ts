import { after, test } from "node:test";
import assert from "node:assert/strict";
import { POSTGRES_COMMAND } from "../../src/components/database";
import { docker, ensureDocker, postgresImage, removeContainer, runContainer } from "../helpers/docker";

// Issue 20: the managed database container's command, run as Docker runs it (the image's entrypoint,
// then these arguments): the server comes up able to keep logical replication slots.
let id: string | undefined;
after(async () => {
  if (id) await removeContainer(id);
});

test("the database container's command starts PostgreSQL with wal_level=logical and 20 slots and senders", async () => {
  await ensureDocker();
  const c = await runContainer({
    image: await postgresImage(),
    env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: "pw-test-123", POSTGRES_DB: "app" },
    command: [...POSTGRES_COMMAND],
  });
  id = c.id;
  let settings = "";
  // The entrypoint initialises the cluster and restarts the server once: ask until the final one answers.
  for (let i = 0; i < 300 && !/^logical\|20\|20$/m.test(settings); i++) {
    settings = await docker([
      "exec",
      "-e",
      "PGPASSWORD=pw-test-123",
      c.id,
      "psql",
      "-U",
      "app",
      "-d",
      "app",
      "-h",
      "127.0.0.1",
      "-At",
      "-c",
      "SELECT current_setting('wal_level') || '|' || current_setting('max_replication_slots') || '|' || current_setting('max_wal_senders')",
    ]).catch(() => "");
    if (!settings) await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(settings.trim(), "logical|20|20");
});
