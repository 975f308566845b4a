// Issue 17, `app.target: pm2`: the shell commands of a pm2 release, as pure functions over plain values
// so the tests run exactly the strings the program declares.
import { DEFAULT_LOG_PATTERNS } from "../health/container";

/** One pm2 release of the app, as the program declares it. */
export interface Pm2Release {
  /** Absolute directory on the target holding `releases/`, `current`, `shared/`, the ecosystem file. */
  root: string;
  /** The release's commit: its directory is `releases/<commit>`. */
  commit: string;
  /** The pm2 process name (`app.name`). */
  appName: string;
  /** The git repository on this machine the release is archived from. */
  repoDir: string;
  /** The app's directory inside the repository (`.` for the root). */
  appDir: string;
  /** Run once in a new release directory, in order (`npm ci`, `npm run build`...). */
  install: string[];
  /** Entry file relative to the release directory. */
  script: string;
  execMode: "cluster" | "fork";
  instances: number | "max";
  /** The pm2 executable on the target. */
  bin: string;
  /** Release directories kept besides the current one. */
  keepReleases: number;
  /** `ssh://user@host[:port]`, or undefined for this machine. */
  host?: string;
}

/** Quotes a string for a POSIX shell. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Parses `ssh://user@host[:port]` into the `ssh` arguments that reach it. */
export function sshArgs(host: string): string {
  const m = /^ssh:\/\/([^@\s]+)@([^:\s]+)(?::(\d+))?$/.exec(host);
  if (!m) throw new Error(`\`host\` must be ssh://user@host[:port], got ${JSON.stringify(host)}`);
  return `ssh${m[3] ? ` -p ${m[3]}` : ""} -o BatchMode=yes ${shq(`${m[1]}@${m[2]}`)}`;
}

/** Runs `script` on the target: `sh -c` here, or the same through `ssh` (stdin passes through). */
export function onTarget(script: string, host?: string): string {
  return host ? `${sshArgs(host)} ${shq(`sh -c ${shq(script)}`)}` : `sh -c ${shq(script)}`;
}

/** Path of a release directory. */
export function releaseDir(root: string, commit: string): string {
  return `${root}/releases/${commit}`;
}

/**
 * The ecosystem file pm2 starts the app from. The environment (DATABASE_URL and the app's secrets) is
 * read from `shared/env.json` (0600) when pm2 loads the file, so no secret is written into it.
 */
export function ecosystemFile(r: Pm2Release): string {
  const app = {
    name: r.appName,
    cwd: `${r.root}/current`,
    script: r.script,
    exec_mode: r.execMode,
    instances: r.instances,
    // A graceful stop (the app closes its server on SIGINT) before pm2 kills a worker of the old release.
    kill_timeout: 10000,
    listen_timeout: 10000,
  };
  return [
    `// Written by safe-deploy for release ${r.commit}. Secrets live in shared/env.json (mode 0600).`,
    `const env = JSON.parse(require("node:fs").readFileSync(${JSON.stringify(`${r.root}/shared/env.json`)}, "utf8"));`,
    `module.exports = { apps: [{ ...${JSON.stringify(app)}, env }] };`,
    "",
  ].join("\n");
}

/**
 * The script run on the target with the release's `git archive` on stdin. A release directory already
 * built (a rollback to a release still on disk) is reused as is: no rebuild. Else it is filled, the
 * install commands run in it, and only then is it marked built, so a failed build is redone next time.
 * `current` switches atomically; pm2 reloads (cluster: zero downtime) or restarts (fork); releases
 * beyond `keepReleases` besides the current one are removed.
 */
export function releaseScript(r: Pm2Release): string {
  const rel = releaseDir(r.root, r.commit);
  const reload = r.execMode === "cluster" ? "startOrReload" : "startOrRestart";
  return [
    "set -eu",
    // The app's environment reached this shell only to be written to shared/env.json.
    "unset SAFE_DEPLOY_APP_ENV",
    // Issue 18: the deploy's own processes (tar, the install, the pm2 CLI: a Node process each) yield
    // the CPU to the workers answering requests (p99 during a reload on 2 busy cores). The CLI that
    // would start pm2's daemon does not: the daemon, and every worker it starts, would inherit it.
    'if nice -n 10 true 2>/dev/null; then low="nice -n 10"; else low=""; fi',
    'pm2_pid="${PM2_HOME:-$HOME/.pm2}/pm2.pid"',
    'if [ -f "$pm2_pid" ] && kill -0 "$(cat "$pm2_pid")" 2>/dev/null; then low_cli="$low"; else low_cli=""; fi',
    `root=${shq(r.root)}`,
    `rel=${shq(rel)}`,
    'mkdir -p "$root/releases"',
    'if [ -f "$rel/.safe-deploy-built" ]; then',
    `  echo ${shq(`release ${r.commit} is on disk: switching to it without a rebuild`)}`,
    "  cat >/dev/null",
    "else",
    '  rm -rf "$rel"',
    '  mkdir -p "$rel"',
    '  $low tar -x -C "$rel"',
    '  cd "$rel"',
    // One shell for all of them, as before: a `cd` in one still holds for the next.
    `  $low sh -c ${shq(["set -eu", ...r.install.flatMap((c) => [`echo ${shq(`install: ${c}`)}`, c])].join("\n"))}`,
    '  touch "$rel/.safe-deploy-built"',
    "fi",
    `cat > "$root/ecosystem.config.js.tmp" <<'SAFE_DEPLOY_EOF'`,
    ecosystemFile(r).trimEnd(),
    "SAFE_DEPLOY_EOF",
    'mv -f "$root/ecosystem.config.js.tmp" "$root/ecosystem.config.js"',
    `ln -sfn ${shq(`releases/${r.commit}`)} "$root/current.tmp"`,
    'mv -Tf "$root/current.tmp" "$root/current"',
    'touch "$rel"',
    `$low_cli ${r.bin} ${reload} "$root/ecosystem.config.js" --update-env`,
    // pm2 finishes a cluster reload even when the new workers crash (it waits listen_timeout, then
    // kills the old ones): say so here, by name and status only (`jlist` holds the env, secrets too).
    // Two readings apart: a worker that crashes at start flips between online and launching, and one
    // reading under load may catch it online (CI, 2026-12-06).
    `{ $low ${r.bin} jlist; echo ${JSON_SPLIT}; sleep 2; $low ${r.bin} jlist; } | $low node -e ${shq(onlineCheck(r.appName))}`,
    'cd "$root/releases"',
    `ls -1t | grep -v -x ${shq(r.commit)} | tail -n +${r.keepReleases + 1} | while read -r old; do rm -rf "./$old"; done`,
    `echo ${shq(`release ${r.commit} is current`)}`,
  ].join("\n");
}

/** Separates the two `pm2 jlist` readings that `onlineCheck` compares. */
const JSON_SPLIT = "@@safe-deploy-next-reading@@";

/**
 * A node script reading two `pm2 jlist` outputs on stdin (split by JSON_SPLIT): fails unless every
 * instance of `name` is online in both and pm2 did not restart it in between (a crash loop).
 */
export function onlineCheck(name: string): string {
  return [
    'let s = "";',
    'process.stdin.on("data", (d) => (s += d)).on("end", () => {',
    `  const name = ${JSON.stringify(name)};`,
    // The list is one JSON line; pm2 may print "[PM2] ..." lines around it (spawning its daemon).
    "  const list = (t) => {",
    '    for (const l of t.split("\\n").reverse()) if (l.startsWith("[")) try { return JSON.parse(l); } catch {}',
    "    return [];",
    "  };",
    `  const [a, b] = s.split(${JSON.stringify(JSON_SPLIT)}).map((t) => list(t).filter((p) => p.name === name));`,
    "  const before = new Map(a.map((p) => [p.pm_id, p.pm2_env.restart_time]));",
    '  const state = (p) => p.pm2_env.status !== "online" ? p.pm2_env.status : before.has(p.pm_id) && before.get(p.pm_id) !== p.pm2_env.restart_time ? "restarting" : "online";',
    '  const bad = [...a, ...b].filter((p) => state(p) !== "online");',
    "  if (b.length === 0 || bad.length > 0) {",
    '    const states = [...new Set(bad.map((p) => `${p.pm_id}: ${state(p)}`))].join(", ") || "no instance";',
    "    console.error(`pm2 reports ${name} not online after the reload (${states}): read \\`pm2 logs ${name}\\`; the deploy fails and rolls back`);",
    "    process.exit(1);",
    "  }",
    "});",
  ].join("\n");
}

/**
 * The command that deploys one release from this machine: writes the app's environment (from
 * `$SAFE_DEPLOY_APP_ENV`, a secret passed through the command's environment) to `shared/env.json` with
 * mode 0600, then pipes `git archive <commit>:<appDir>` into `releaseScript` on the target.
 */
export function releaseCommand(r: Pm2Release): string {
  const shared = `${r.root}/shared`;
  const writeEnv = [
    "set -eu",
    "umask 077",
    `mkdir -p ${shq(shared)}`,
    `cat > ${shq(`${shared}/env.json.tmp`)}`,
    `mv -f ${shq(`${shared}/env.json.tmp`)} ${shq(`${shared}/env.json`)}`,
  ].join("\n");
  const tree = r.appDir === "." || r.appDir === "" ? r.commit : `${r.commit}:${r.appDir.replace(/\/+$/, "")}`;
  return [
    "set -e",
    `printf '%s' "$SAFE_DEPLOY_APP_ENV" | ${onTarget(writeEnv, r.host)}`,
    `git -C ${shq(r.repoDir)} archive --format=tar ${shq(tree)} | ${onTarget(releaseScript(r), r.host)}`,
  ].join("\n");
}

/**
 * The health gate's log check: reads `pm2 logs --nostream --lines N` on the target and fails on the
 * first critical line (the container check's patterns), with any URL password masked.
 */
export function logCheckCommand(
  r: Pick<Pm2Release, "appName" | "bin" | "host">,
  lines: number,
  patterns: string[] = DEFAULT_LOG_PATTERNS,
): string {
  const re = patterns.join("|");
  const script = [
    `out=$(${r.bin} logs ${shq(r.appName)} --nostream --raw --lines ${lines} 2>&1) || { echo "pm2 logs failed: $out" >&2; exit 1; }`,
    `line=$(printf '%s\\n' "$out" | grep -E -i -m1 ${shq(re)} | sed -E 's#(://[^:/@ ]*:)[^@ ]*@#\\1***@#g' || true)`,
    `if [ -n "$line" ]; then echo ${shq(`critical line in the last ${lines} lines of \`pm2 logs ${r.appName}\`: `)}"$line" >&2; echo 'fix the release, or roll back with \`safe-deploy rollback\`' >&2; exit 1; fi`,
    `echo ${shq(`pm2 logs ${r.appName}: no critical line in the last ${lines}`)}`,
  ].join("\n");
  return onTarget(script, r.host);
}

/** Turns `K=V` env entries (as `appEnvs` builds them) into the object pm2's env file holds. */
export function envObject(entries: string[]): Record<string, string> {
  return Object.fromEntries(
    entries.map((e) => {
      const i = e.indexOf("=");
      return [e.slice(0, i), e.slice(i + 1)];
    }),
  );
}
