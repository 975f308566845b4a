// A stand-in `pulumi` executable for driving the real Automation API code path (LocalWorkspace, the SDK's
// argument building, our PulumiCommand wrapper) where no Pulumi CLI can be installed. It records every
// call and every signal it gets in its directory; what it prints and does is set per subcommand below.
import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where the stand-in lives and what it recorded. */
export interface StandIn {
  dir: string;
  /** PATH with the stand-in first. */
  path: string;
  /** One line per call: its arguments. */
  calls: string;
  /** One line per signal received during `up` (INT, TERM). */
  signals: string;
}

const SCRIPT = String.raw`#!/usr/bin/env bash
here="$(cd "$(dirname "$0")" && pwd)"
echo "$*" >> "$here/calls"
case "$1 $2" in
  "version "*) echo "v3.248.0"; exit 0 ;;
  "stack output") echo "{}"; exit 0 ;;
  "stack history") echo "[]"; exit 0 ;;
  "stack export")
    cat "$here/export.json"; exit 0 ;;
  "stack import")
    shift 2; while [ "$#" -gt 0 ]; do [ "$1" = "--file" ] && file="$2"; shift; done
    stat -c %a "$file" > "$here/import-mode"; echo "$file" > "$here/import-path"; cp "$file" "$here/imported.json"; exit 0 ;;
esac
if [ "$1" = "up" ] || [ "$1" = "refresh" ]; then
  # Node, as the Go CLI does, handles each signal as it arrives (a shell's trap may merge two).
  [ "$STAND_IN_MODE" = "wait-for-cancel" ] && exec "$STAND_IN_NODE" "$here/wait-for-cancel.js"
  printf 'Updating (staging) postgres://app:hun'
  sleep 0.3
  printf 'ter22@db:5432/app\nno newline at the end'
  exit 0
fi
exit 0
`;

const WAIT_FOR_CANCEL = String.raw`const fs = require("node:fs");
const path = require("node:path");
const here = __dirname;
for (const s of ["SIGINT", "SIGTERM"]) {
  process.on(s, () => fs.appendFileSync(path.join(here, "signals"), s.slice(3) + "\n"));
}
fs.writeFileSync(path.join(here, "ready"), "");
// The caller says when it has handled the signal (and sent whatever it sends): any second signal has
// arrived by then and is recorded during the last wait.
fs.writeFileSync(path.join(here, "pid"), String(process.pid));
// With STAND_IN_RELEASE set it runs on until the file "release" appears (a caller that goes away).
const until = process.env.STAND_IN_RELEASE ? "release" : "handled";
const poll = setInterval(() => {
  if (!fs.existsSync(path.join(here, "signals")) || !fs.existsSync(path.join(here, until))) return;
  clearInterval(poll);
  setTimeout(() => {
    process.stderr.write("error: update canceled\n");
    process.exit(255);
  }, 300);
}, 20);
`;

/** Writes the stand-in into a fresh directory. */
export async function standIn(): Promise<StandIn> {
  const dir = await mkdtemp(join(tmpdir(), "sd-pulumi-"));
  await writeFile(join(dir, "pulumi"), SCRIPT);
  await chmod(join(dir, "pulumi"), 0o755);
  await writeFile(join(dir, "wait-for-cancel.js"), WAIT_FOR_CANCEL);
  return {
    dir,
    path: `${dir}:${process.env.PATH}`,
    calls: join(dir, "calls"),
    signals: join(dir, "signals"),
  };
}
