// The reference pages cannot drift from the code (issue 19): every config key and secret in
// docs/configuration.md exists in the schema and every schema key is documented; every flag of every
// command is in docs/commands.md, and every flag a command's row names is one that command has.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { Command } from "commander";
import { buildProgram } from "../../src/cli/index";
import { SECRET_KEYS, SECTIONS } from "../../src/config/schema";

const DOCS = join(__dirname, "../../docs");
const read = (name: string) => readFileSync(join(DOCS, name), "utf8");

/** Rows of every markdown table in `text`, as arrays of cells (pipes inside backticks are escaped `\|`). */
function tableRows(text: string): string[][] {
  return text
    .split("\n")
    .filter((l) => l.startsWith("|") && !/^\|\s*-/.test(l))
    .map((l) =>
      l
        .split("\\|")
        .join("\u0001")
        .split("|")
        .slice(1, -1)
        .map((c) => c.split("\u0001").join("|").trim()),
    );
}

/** Keys a first cell names: "`app.build.dockerfile` / `.target`" gives app.build.dockerfile and app.build.target. */
function cellKeys(cell: string): string[] {
  const keys: string[] = [];
  let parent = "";
  for (const [, name] of cell.matchAll(/`([^`]+)`/g)) {
    if (name.startsWith(".") && parent) keys.push(parent + name);
    else if (/^[a-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)+$/.test(name)) {
      keys.push(name);
      parent = name.slice(0, name.lastIndexOf("."));
    }
  }
  return keys;
}

type Zod = { _zod?: { def?: Record<string, unknown> } };
function unwrap(s: Zod): Zod {
  for (;;) {
    const def = s?._zod?.def as { type?: string; innerType?: Zod; in?: Zod } | undefined;
    const inner = def?.innerType ?? (def?.type === "pipe" ? def.in : undefined);
    if (!inner) return s;
    s = inner;
  }
}
/** Every key path of a zod schema (objects, arrays of objects, unions of objects). */
function schemaKeys(s: Zod, prefix: string, out: Set<string>): Set<string> {
  const def = unwrap(s)?._zod?.def as
    { type?: string; shape?: Record<string, Zod>; element?: Zod; options?: Zod[] } | undefined;
  if (def?.type === "object") {
    for (const [k, v] of Object.entries(def.shape ?? {})) {
      out.add(prefix + k);
      schemaKeys(v, `${prefix}${k}.`, out);
    }
  } else if (def?.type === "array" && def.element) schemaKeys(def.element, prefix, out);
  else if (def?.type === "union") for (const o of def.options ?? []) schemaKeys(o, prefix, out);
  return out;
}

test("docs/configuration.md: every documented key exists, every schema key is documented", () => {
  const rows = tableRows(read("configuration.md"));
  const documented = new Map<string, string>();
  for (const row of rows) for (const k of cellKeys(row[0] ?? "")) documented.set(k, row.join(" | "));
  const keys = new Set<string>();
  for (const [section, schema] of Object.entries(SECTIONS))
    schemaKeys(schema as unknown as Zod, `${section}.`, keys);
  assert.ok(keys.size > 50, `walked only ${keys.size} keys of the schema`);
  const unknown = [...documented.keys()].filter((k) => !keys.has(k));
  assert.deepEqual(unknown, [], "documented keys that the schema does not have");
  // A key is documented by its own row, or by its parent's row naming it (`{command: [...], retries: 3}`).
  const undocumented = [...keys].filter((k) => {
    if (documented.has(k)) return false;
    // An object documented key by key (`app.build.context`, `app.build.dockerfile`, ...).
    if ([...documented.keys()].some((d) => d.startsWith(`${k}.`))) return false;
    for (let p = k; p.includes(".");) {
      p = p.slice(0, p.lastIndexOf("."));
      const row = documented.get(p);
      if (row && row.includes(k.slice(k.lastIndexOf(".") + 1))) return false;
    }
    return true;
  });
  assert.deepEqual(undocumented, [], "schema keys that docs/configuration.md does not document");
});

test("docs/configuration.md: the secrets table lists exactly the secret keys", () => {
  const names = new Set<string>();
  for (const row of tableRows(read("configuration.md")))
    if (/secret key/.test(row[0] ?? "") || /^`[a-z][A-Za-z]+`( \/ `[a-z][A-Za-z]+`)*$/.test(row[0] ?? ""))
      for (const [, n] of (row[0] ?? "").matchAll(/`([a-z][A-Za-z]+)`/g)) names.add(n);
  assert.deepEqual([...names].sort(), [...SECRET_KEYS].sort());
});

/** Every command of the program with its full name (`backup restore`) and its long flags. */
function commands(c: Command, prefix = ""): Array<{ name: string; flags: string[] }> {
  const out: Array<{ name: string; flags: string[] }> = [];
  for (const sub of c.commands) {
    const name = `${prefix}${sub.name()}`;
    out.push({ name, flags: sub.options.map((o) => o.long).filter((f): f is string => !!f) });
    out.push(...commands(sub, `${name} `));
  }
  return out;
}

test("docs/commands.md: every command and flag of the CLI is documented", () => {
  const text = read("commands.md");
  const missing: string[] = [];
  for (const { name, flags } of commands(buildProgram())) {
    // `checkpoint list\|show RELEASE\|restore`: a subcommand is named after its verb on the same line.
    const [verb, ...sub] = name.split(" ");
    const named = text
      .split("\n")
      .some((l) => l.includes(`\`${verb}`) && (!sub.length || new RegExp(`[ |]${sub.join(" ")}\\b`).test(l)));
    if (!named) missing.push(name);
    for (const f of flags) if (!text.includes(f)) missing.push(`${name} ${f}`);
  }
  assert.deepEqual(missing, [], "commands or flags docs/commands.md does not mention");
});

test("docs/commands.md: every flag a command's row names is a flag of that command", () => {
  const all = commands(buildProgram());
  const wrong: string[] = [];
  for (const row of tableRows(read("commands.md"))) {
    const first = row[0] ?? "";
    // A row may name several commands, separated by `·`: each part's flags belong to its own verb.
    for (const part of first.split("·")) {
      const verb = /`([a-z][a-z-]*)(?:[ `\\])/.exec(part)?.[1];
      if (!verb) continue;
      const flags = new Set(
        all.filter((c) => c.name === verb || c.name.startsWith(`${verb} `)).flatMap((c) => c.flags),
      );
      if (!all.some((c) => c.name === verb)) {
        wrong.push(`${verb}: no such command`);
        continue;
      }
      for (const [f] of part.matchAll(/--[a-z][a-z-]*/g)) if (!flags.has(f)) wrong.push(`${verb} ${f}`);
    }
  }
  assert.deepEqual(wrong, [], "flags docs/commands.md names that the command does not have");
});
