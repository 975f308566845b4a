import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";

/**
 * sha256 over every file under `dir` (relative path + content, in sorted order), so renaming, editing,
 * adding or removing a migration changes it. A missing directory hashes as empty: the program still
 * previews, and the migration step reports the missing directory itself. Entries named in `skip`
 * (e.g. node_modules) are left out at any depth.
 */
export function checksumDir(dir: string, skip: readonly string[] = []): string {
  const h = createHash("sha256");
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true })
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .filter((e) => !skip.includes(e.name))
      .flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.isFile() ? [join(d, e.name)] : []));
  if (existsSync(dir) && statSync(dir).isDirectory()) {
    for (const f of walk(dir)) {
      h.update(relative(dir, f)).update("\0").update(readFileSync(f)).update("\0");
    }
  }
  return h.digest("hex");
}

/** A short stable key for one release: what changes when the image or the migrations change. */
export function releaseKey(imageId: string, migrationsChecksum: string): string {
  return createHash("sha256").update(`${imageId}\n${migrationsChecksum}`).digest("hex").slice(0, 16);
}
