// Copies stdin to stdout with secrets masked: the values of the environment variables named in
// SAFE_DEPLOY_SECRET_ENV_NAMES and any `scheme://user:password@` URL. Used by scripts/run-hook.sh so a
// hook that prints a secret never leaves it in a log.
import { secretForms } from "../log/logger";
import { redact, urlSecrets } from "../log/redact";

const names = (process.env.SAFE_DEPLOY_SECRET_ENV_NAMES ?? "").split(/\s+/).filter(Boolean);
// A hook may print DATABASE_URL's password on its own (decoded), or a secret URL-encoded or line by line.
const secrets = names
  .map((n) => process.env[n] ?? "")
  .filter((v) => v.length > 0)
  .flatMap((v) => urlSecrets(v))
  .flatMap((v) => secretForms(v));
let pending = "";
process.stdin.setEncoding("utf8");
// Redact whole lines, so a secret split across two chunks is still found.
process.stdin.on("data", (chunk: string) => {
  pending += chunk;
  const cut = pending.lastIndexOf("\n");
  if (cut >= 0) {
    process.stdout.write(redact(pending.slice(0, cut + 1), secrets));
    pending = pending.slice(cut + 1);
  }
});
process.stdin.on("end", () => process.stdout.write(redact(pending, secrets)));
