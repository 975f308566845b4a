// The layers of docs/architecture.md ("Layers"), checked on the sources' import statements (issue 19):
// the engine never imports the CLI, and src/core never imports Pulumi. The imports are read with the
// TypeScript parser, so static, type-only, re-export, dynamic `import()` and `require()` all count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import ts from "typescript";

const root = resolve(__dirname, "..");

/** One import of a source file. */
interface Import {
  /** The importing file, relative to the repository (`src/core/x.ts`). */
  file: string;
  line: number;
  /** As written: `../../cli/stack`, `@pulumi/pulumi`. */
  spec: string;
  /** The imported source file, relative to the repository, for a relative import that resolves. */
  target?: string;
  /** `import type`, `export type`, `typeof import("...")`: gone at run time. */
  typeOnly: boolean;
  /** At the top of the module (loaded with it), rather than `import()`/`require()` inside a function. */
  moduleScope: boolean;
}

/** Every `.ts` file under `dir`, relative to `root`. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const rel = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith(".ts")) out.push(rel);
  }
  return out.sort();
}

function resolveRelative(file: string, spec: string, exists: (f: string) => boolean): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = join(dirname(file), spec);
  return [`${base}.ts`, join(base, "index.ts"), base].find(exists);
}

/** The imports of one file's text (`file` relative to the repository, for resolving and messages). */
export function importsOf(
  file: string,
  text: string,
  exists: (f: string) => boolean = (f) => existsSync(join(root, f)),
): Import[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (node: ts.Node, lit: ts.Expression | undefined, typeOnly: boolean, moduleScope: boolean) => {
    if (!lit || !ts.isStringLiteralLike(lit)) return;
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    out.push({
      file,
      line,
      spec: lit.text,
      target: resolveRelative(file, lit.text, exists),
      typeOnly,
      moduleScope,
    });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const c = node.importClause;
      const typeOnly =
        !!c &&
        (c.isTypeOnly ||
          (!c.name &&
            !!c.namedBindings &&
            ts.isNamedImports(c.namedBindings) &&
            c.namedBindings.elements.length > 0 &&
            c.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier, typeOnly, true);
    } else if (ts.isExportDeclaration(node)) {
      add(node, node.moduleSpecifier, node.isTypeOnly, true);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node, node.moduleReference.expression, node.isTypeOnly, node.parent === sf);
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) add(node, arg.literal, true, false);
    } else if (ts.isCallExpression(node)) {
      const isImport = node.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(node.expression) && node.expression.text === "require";
      if (isImport || isRequire) add(node, node.arguments[0], false, isModuleScope(node));
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Whether a call runs when the module loads: not inside any function. */
function isModuleScope(node: ts.Node): boolean {
  for (let n = node.parent; n; n = n.parent) if (ts.isFunctionLike(n)) return false;
  return true;
}

const at = (i: Import) => `${i.file}:${i.line} imports "${i.spec}"`;
const under = (file: string | undefined, dir: string) => !!file && file.startsWith(`${dir}/`);

/** Engine, components and providers never import the CLI (its ports live in the engine). */
export function cliImports(imports: readonly Import[]): string[] {
  return imports
    .filter((i) => ["src/core", "src/components", "src/providers"].some((d) => under(i.file, d)))
    .filter((i) => under(i.target, "src/cli") || /(^|\/)cli(\/|$)/.test(i.spec.replace(/^\.\.?\//, "")))
    .map((i) => `${at(i)}: the engine, components and providers must not import src/cli`);
}

/** src/core imports nothing of the layers built on it: components, providers, the Pulumi entry point. */
export function shellImports(imports: readonly Import[]): string[] {
  return imports
    .filter((i) => under(i.file, "src/core"))
    .filter(
      (i) =>
        under(i.target, "src/components") || under(i.target, "src/providers") || i.target === "src/index.ts",
    )
    .map((i) => `${at(i)}: src/core must not import the components, providers or src/index.ts built on it`);
}

/**
 * src/core files allowed to import `@pulumi/*`, each with its reason. None today: the engine is
 * Pulumi-free (docs/architecture.md, "Layers"); an entry here needs a reason a reviewer accepts.
 */
export const CORE_PULUMI_EXCEPTIONS: Record<string, string> = {};

/** src/core never imports Pulumi, but for the explicit exceptions. */
export function pulumiInCore(
  imports: readonly Import[],
  exceptions: Record<string, string> = CORE_PULUMI_EXCEPTIONS,
): string[] {
  return imports
    .filter((i) => under(i.file, "src/core") && /^@pulumi\/|^pulumi$/.test(i.spec) && !(i.file in exceptions))
    .map((i) => `${at(i)}: src/core must stay Pulumi-free (the port is src/core/release/stack-port.ts)`);
}

const all = () => sources("src").flatMap((f) => importsOf(f, readFileSync(join(root, f), "utf8")));

test("the import reader sees static, type-only, re-exported, dynamic and required imports, with lines", () => {
  const text = [
    'import type { A } from "../../cli/stack";',
    'import { b } from "./b";',
    'export { c } from "@pulumi/pulumi";',
    "async function f() {",
    '  await import("../x");',
    '  require("@pulumi/docker");',
    '  type T = typeof import("@aws-sdk/client-s3");',
    "}",
    'const eager = require("left-pad");',
  ].join("\n");
  const got = importsOf("src/core/release/o.ts", text, (f) => f === "src/core/release/b.ts");
  assert.deepEqual(
    got.map((i) => [i.line, i.spec, i.target ?? null, i.typeOnly, i.moduleScope]),
    [
      [1, "../../cli/stack", null, true, true],
      [2, "./b", "src/core/release/b.ts", false, true],
      [3, "@pulumi/pulumi", null, false, true],
      [5, "../x", null, false, false],
      [6, "@pulumi/docker", null, false, false],
      [7, "@aws-sdk/client-s3", null, true, false],
      [9, "left-pad", null, false, true],
    ],
  );
});

test("the rules name the offending file, line and import", () => {
  const exists = (f: string) => f === "src/cli/stack.ts";
  const bad = [
    ...importsOf("src/core/release/orchestrator.ts", 'import type { S } from "../../cli/stack";', exists),
    ...importsOf("src/providers/backup/index.ts", 'const m = () => import("../../cli/stack");', exists),
    ...importsOf("src/core/x.ts", 'function f() { return require("@pulumi/pulumi"); }', exists),
  ];
  assert.deepEqual(cliImports(bad), [
    'src/core/release/orchestrator.ts:1 imports "../../cli/stack": the engine, components and providers must not import src/cli',
    'src/providers/backup/index.ts:1 imports "../../cli/stack": the engine, components and providers must not import src/cli',
  ]);
  assert.deepEqual(pulumiInCore(bad), [
    'src/core/x.ts:1 imports "@pulumi/pulumi": src/core must stay Pulumi-free (the port is src/core/release/stack-port.ts)',
  ]);
  assert.deepEqual(pulumiInCore(bad, { "src/core/x.ts": "a reason" }), []);
  const shell = importsOf(
    "src/core/y.ts",
    'import { App } from "../components/app";',
    (f) => f === "src/components/app.ts",
  );
  assert.deepEqual(shellImports(shell), [
    'src/core/y.ts:1 imports "../components/app": src/core must not import the components, providers or src/index.ts built on it',
  ]);
});

test("nothing under src/core, src/components or src/providers imports src/cli; src/core nothing built on it", () => {
  const imports = all();
  assert.ok(imports.length > 100, `read ${imports.length} imports: the scan found the sources`);
  assert.deepEqual(cliImports(imports), []);
  assert.deepEqual(shellImports(imports), []);
});

test("nothing under src/core imports @pulumi/*, but for the listed exceptions", () => {
  assert.deepEqual(pulumiInCore(all()), []);
  for (const [file, why] of Object.entries(CORE_PULUMI_EXCEPTIONS)) {
    assert.ok(existsSync(join(root, file)), `exception ${file} names a file that exists`);
    assert.ok(why.length > 10, `exception ${file} gives a reason`);
  }
});

/**
 * Verb files that may import another verb's file, each with its reason. Any other import between
 * `src/cli/commands/*` goes through a shared module (src/cli/shared.ts).
 */
export const VERB_IMPORTS: Record<string, string> = {
  "src/cli/commands/rollback.ts -> src/cli/commands/status.ts":
    "`rollback --status` and the menu's 'System status' are `status` itself",
  "src/cli/commands/rollback.ts -> src/cli/commands/history.ts":
    "`rollback --list` and the menu's 'Recent releases' print `history` itself",
};

/** A verb file importing another verb's file, but for the listed pairs. */
export function verbImports(
  imports: readonly Import[],
  allowed: Record<string, string> = VERB_IMPORTS,
): string[] {
  return imports
    .filter((i) => under(i.file, "src/cli/commands") && under(i.target, "src/cli/commands"))
    .filter((i) => i.target !== i.file && !(`${i.file} -> ${i.target}` in allowed))
    .map((i) => `${at(i)}: a verb imports another verb's file; move what both need to src/cli/shared.ts`);
}

/** Import circles among the relative imports (any kind: static, type-only, dynamic), each as a path. */
export function cycles(imports: readonly Import[]): string[] {
  const edges = new Map<string, string[]>();
  for (const i of imports) if (i.target) edges.set(i.file, [...(edges.get(i.file) ?? []), i.target]);
  const state = new Map<string, "open" | "done">();
  const found: string[] = [];
  const dfs = (file: string, path: string[]) => {
    state.set(file, "open");
    for (const next of new Set(edges.get(file) ?? [])) {
      if (state.get(next) === "open") found.push([...path.slice(path.indexOf(next)), next].join(" -> "));
      else if (!state.has(next)) dfs(next, [...path, next]);
    }
    state.set(file, "done");
  };
  for (const file of [...edges.keys()].sort()) if (!state.has(file)) dfs(file, [file]);
  return found;
}

/**
 * What `file` loads with itself: its module-scope imports that exist at run time, followed through the
 * relative ones. Bare specifiers (packages, built-ins) are returned as written.
 */
export function eagerClosure(file: string, imports: readonly Import[]): Set<string> {
  const byFile = new Map<string, Import[]>();
  for (const i of imports) byFile.set(i.file, [...(byFile.get(i.file) ?? []), i]);
  const seen = new Set<string>();
  const walk = (f: string) => {
    for (const i of byFile.get(f) ?? []) {
      if (i.typeOnly || !i.moduleScope) continue;
      const key = i.target ?? i.spec;
      if (seen.has(key)) continue;
      seen.add(key);
      if (i.target) walk(i.target);
    }
  };
  walk(file);
  return seen;
}

test("the verb rules see a verb importing another, and an import circle", () => {
  const files = new Set([
    "src/cli/commands/a.ts",
    "src/cli/commands/b.ts",
    "src/cli/shared.ts",
    "src/cli/x.ts",
  ]);
  const exists = (f: string) => files.has(f);
  const imports = [
    ...importsOf(
      "src/cli/commands/a.ts",
      'import { s } from "../shared";\nimport type { B } from "./b";',
      exists,
    ),
    ...importsOf("src/cli/commands/b.ts", 'async function f() { await import("../x"); }', exists),
    ...importsOf("src/cli/x.ts", 'import type { A } from "./commands/a";', exists),
  ];
  assert.deepEqual(verbImports(imports), [
    `src/cli/commands/a.ts:2 imports "./b": a verb imports another verb's file; move what both need to src/cli/shared.ts`,
  ]);
  assert.deepEqual(verbImports(imports, { "src/cli/commands/a.ts -> src/cli/commands/b.ts": "why" }), []);
  assert.deepEqual(cycles(imports), [
    "src/cli/commands/a.ts -> src/cli/commands/b.ts -> src/cli/x.ts -> src/cli/commands/a.ts",
  ]);
  assert.deepEqual(cycles(imports.slice(0, 3)), []);
  assert.deepEqual([...eagerClosure("src/cli/commands/a.ts", imports)], ["src/cli/shared.ts"]);
});

test("no verb file under src/cli/commands imports another verb's file, but for the listed pairs", () => {
  const imports = all();
  assert.deepEqual(verbImports(imports), []);
  for (const pair of Object.keys(VERB_IMPORTS)) {
    const [from, to] = pair.split(" -> ");
    assert.ok(
      imports.some((i) => i.file === from && i.target === to),
      `${pair} is listed but no longer imported: drop it from VERB_IMPORTS`,
    );
  }
});

test("no import circle in src/ (relative imports of any kind)", () => {
  assert.deepEqual(cycles(all()), []);
});

test("the CLI loads only commander and Node built-ins with itself: the engine waits for the verb's action", () => {
  // src/cli/index.ts: `safe-deploy lint` must not pay for the Automation API or any other package.
  const packages = [...eagerClosure("src/cli/index.ts", all())].filter((k) => !k.startsWith("src/"));
  assert.deepEqual(
    packages.filter((p) => p !== "commander" && !p.startsWith("node:")),
    [],
    `loaded with src/cli/index.ts: ${packages.join(", ")}`,
  );
});
