import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command, Option } from "commander";
import { parse as parseShell } from "shell-quote";
import { parse as parseYaml } from "yaml";
import { buildProgram } from "../../src/cli";

// The workflows drive `safe-deploy`: every invocation in them must be a command and flags the CLI really
// accepts (the real commander program, not a copy of its flags), and the deploy pipeline must keep the
// shape the users asked for.
const DIR = join(__dirname, "../../.github/workflows");

type Step = { name?: string; run?: string; uses?: string; with?: Record<string, unknown>; if?: string };
type Job = {
  needs?: string | string[];
  if?: string;
  steps: Step[];
  services?: Record<string, { image: string }>;
  outputs?: Record<string, string>;
};
type Workflow = {
  on: Record<string, unknown>;
  jobs: Record<string, Job>;
  concurrency?: { group: string; "cancel-in-progress": boolean };
};

const workflows: Record<string, Workflow> = Object.fromEntries(
  readdirSync(DIR)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => [f, parseYaml(readFileSync(join(DIR, f), "utf8")) as Workflow]),
);

/** Shell words of every safe-deploy invocation in a `run:` script (continuations joined, `${{ }}` and `$(...)` opaque). */
export function invocations(script: string): string[][] {
  const inner: string[] = [];
  let text = script.replace(/\\\n\s*/g, " ").replace(/\$\{\{[^}]*\}\}/g, "GH_EXPR");
  // A command substitution is a word where it stands, and a command line of its own.
  text = text.replace(/\$\(([^()]*)\)/g, (_m, cmd: string) => {
    inner.push(cmd);
    return "SUBST";
  });
  text = [text, ...inner].join("\n");
  const out: string[][] = [];
  for (const line of text.split("\n")) {
    let words: string[] = [];
    const flush = () => {
      const i = words.findIndex((w) => /(^|\/)safe-deploy$/.test(w));
      if (i >= 0) out.push(words.slice(i + 1));
      words = [];
    };
    for (const t of parseShell(line, (name) => `$${name}`)) {
      if (typeof t === "string") words.push(t);
      else if ("op" in t && t.op !== "glob") flush();
      else if ("comment" in t) break;
      else if ("pattern" in t) words.push(t.pattern);
    }
    flush();
  }
  return out;
}

/** Checks one invocation against the CLI's definition; returns the problem, or undefined. */
export function checkInvocation(words: string[]): string | undefined {
  let cmd: Command = buildProgram();
  let i = 0;
  while (i < words.length && !words[i].startsWith("-")) {
    const sub = cmd.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]));
    if (!sub) {
      if (cmd.commands.length && cmd.registeredArguments.length === 0)
        return `unknown command "${words.slice(0, i + 1).join(" ")}"`;
      break;
    }
    cmd = sub;
    i += 1;
  }
  if (cmd.commands.length) return `"${words.slice(0, i).join(" ") || "safe-deploy"}" needs a subcommand`;
  const seen = new Set<Option>();
  let positional = 0;
  for (; i < words.length; i++) {
    const w = words[i];
    if (!w.startsWith("-") || w === "-") {
      positional += 1;
      continue;
    }
    const [flag, inline] = w.split(/=(.*)/s, 2);
    const opt = cmd.options.find((o) => o.long === flag || o.short === flag);
    if (!opt) {
      if (flag === "--help" || flag === "-h") continue;
      return `"${cmd.name()}" has no option ${flag}`;
    }
    seen.add(opt);
    if ((opt.required || opt.optional) && inline === undefined) {
      // a value follows (variadic options take every word up to the next flag)
      if (opt.required && (i + 1 >= words.length || words[i + 1].startsWith("--")))
        return `${flag} needs a value`;
      if (opt.variadic) while (i + 1 < words.length && !words[i + 1].startsWith("-")) i += 1;
      else if (i + 1 < words.length && !words[i + 1].startsWith("--")) i += 1;
    }
  }
  for (const o of cmd.options) if (o.mandatory && !seen.has(o)) return `"${cmd.name()}" needs ${o.long}`;
  const args = cmd.registeredArguments;
  const min = args.filter((a) => a.required).length;
  const max = args.some((a) => a.variadic) ? Infinity : args.length;
  if (positional < min || positional > max)
    return `"${cmd.name()}" takes ${min === max ? min : `${min}..${max}`} argument(s), got ${positional}`;
  return undefined;
}

const all = Object.entries(workflows).flatMap(([file, wf]) =>
  Object.entries(wf.jobs).flatMap(([job, j]) =>
    j.steps.flatMap((s) => (s.run ? invocations(s.run).map((w) => ({ file, job, words: w })) : [])),
  ),
);

test("every safe-deploy invocation in the workflows is a real command with real flags", () => {
  assert.ok(all.length >= 8, `found only ${all.length} invocations`);
  const used = new Set(
    all.map((a) =>
      a.words
        .filter((w) => !w.startsWith("-"))
        .slice(0, 2)
        .join(" "),
    ),
  );
  for (const c of ["up", "health", "lint", "drift", "rehearse", "backup create", "migrate up"]) {
    assert.ok(
      [...used].some((u) => u.startsWith(c)),
      `no workflow runs safe-deploy ${c}`,
    );
  }
  for (const a of all) {
    assert.equal(
      checkInvocation(a.words),
      undefined,
      `${a.file} job ${a.job}: safe-deploy ${a.words.join(" ")}`,
    );
  }
});

test("the checker rejects made-up commands, flags, missing required flags and values", () => {
  const bad: Array<[string, RegExp]> = [
    ["bin/safe-deploy deploy --stack production", /unknown command "deploy"/],
    ["bin/safe-deploy up --stak production", /has no option --stak/],
    ["bin/safe-deploy up", /needs --stack/],
    ["bin/safe-deploy backup", /needs a subcommand/],
    ["bin/safe-deploy backup creat --dir d", /unknown command "backup creat"/],
    ['bin/safe-deploy health --url "$URL" --retries', /--retries needs a value/],
    ["bin/safe-deploy rollback --stack s --quick extra", /takes 0 argument/],
    ["npx safe-deploy lint", /takes 1\.\.Infinity argument/],
  ];
  for (const [line, why] of bad) {
    const [words] = invocations(line);
    assert.ok(words, `no invocation found in ${line}`);
    assert.match(checkInvocation(words) ?? "accepted", why, line);
  }
  const good = [
    'bin/safe-deploy rollback --stack "$STACK" --full abc123 backups/b.dump --yes',
    "bin/safe-deploy up --stack ${{ inputs.stack }} --no-rollback && echo done",
    'file=$(bin/safe-deploy backup create --dir d | tail -n 1); bin/safe-deploy backup verify "$file"',
  ];
  for (const line of good) {
    for (const words of invocations(line)) assert.equal(checkInvocation(words), undefined, line);
  }
  assert.equal(
    invocations("x=1 && bin/safe-deploy backup create --dir d \\\n  --label manual | tail -n 1").length,
    1,
  );
});

test("deploy.yml: backup-and-test -> migrate -> deploy -> verify -> notify, one deploy per stack, 30-day backup, 15 attempts", () => {
  const wf = workflows["deploy.yml"];
  assert.ok(wf, "deploy.yml exists");
  assert.deepEqual(Object.keys(wf.on).sort(), ["push", "workflow_dispatch"]);
  const needs = (j: string) => [wf.jobs[j].needs ?? []].flat();
  assert.deepEqual(Object.keys(wf.jobs), ["backup-and-test", "migrate", "deploy", "verify", "notify"]);
  assert.deepEqual(needs("migrate"), ["backup-and-test"]);
  assert.ok(needs("deploy").includes("migrate") && needs("deploy").includes("backup-and-test"));
  assert.deepEqual(needs("verify"), ["deploy"]);
  assert.deepEqual(needs("notify").sort(), ["backup-and-test", "deploy", "migrate", "verify"]);
  assert.equal(wf.jobs.notify.if, "always()");
  assert.match(wf.concurrency!.group, /^deploy-\$\{\{ inputs\.stack/);
  assert.equal(wf.concurrency!["cancel-in-progress"], false);
  const upload = wf.jobs["backup-and-test"].steps.find((s) => s.uses?.startsWith("actions/upload-artifact"));
  assert.equal(upload?.with?.["retention-days"], 30);
  const verify = all.find((a) => a.file === "deploy.yml" && a.job === "verify" && a.words[0] === "health");
  assert.ok(verify);
  assert.equal(verify.words[verify.words.indexOf("--retries") + 1], "15");
  const up = all.find((a) => a.file === "deploy.yml" && a.job === "deploy" && a.words[0] === "up");
  assert.ok(up && !up.words.includes("--no-rollback"), "the deploy job rolls back by itself");
  const rehearse = all.find((a) => a.job === "migrate" && a.words[0] === "rehearse");
  assert.ok(rehearse?.words.includes("--backup"));
});

test("pr.yml: tests, migration lint, migrations on a fresh PostgreSQL plus drift, previews of both stacks", () => {
  const wf = workflows["pr.yml"];
  assert.ok(wf.on.pull_request !== undefined);
  const mig = wf.jobs.migrations;
  assert.match(mig.services!.postgres.image, /^postgres:15/);
  const cmds = all.filter((a) => a.file === "pr.yml").map((a) => a.words[0]);
  for (const c of ["lint", "migrate", "drift"]) assert.ok(cmds.includes(c), `pr.yml runs ${c}`);
  assert.ok(wf.jobs.test.steps.some((s) => /bash \.ci\/run/.test(s.run ?? "")));
  const preview = wf.jobs.preview.steps.find((s) => s.uses?.startsWith("pulumi/actions"));
  assert.equal(preview?.with?.command, "preview");
  assert.equal(preview?.with?.["comment-on-pr"], true);
  assert.deepEqual(
    (wf.jobs.preview as unknown as { strategy: { matrix: { stack: string[] } } }).strategy.matrix.stack,
    ["staging", "production"],
  );
});

test("no workflow prints a secret: secrets reach steps through env, never inline in a command", () => {
  for (const [file, wf] of Object.entries(workflows)) {
    for (const [job, j] of Object.entries(wf.jobs)) {
      for (const s of j.steps) {
        assert.ok(
          !/\$\{\{\s*secrets\./.test(s.run ?? ""),
          `${file} ${job} "${s.name ?? s.run}" inlines a secret`,
        );
        assert.ok(
          !/set -x|echo "?\$\w*(URL|KEY|TOKEN|PASSWORD|PASSPHRASE)\b/.test(s.run ?? ""),
          `${file} ${job}: may print a secret`,
        );
      }
    }
  }
});
