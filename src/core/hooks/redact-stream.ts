// Copies stdin to stdout with secrets masked: the values of the environment variables named in
// SAFE_DEPLOY_SECRET_ENV_NAMES and any `scheme://user:password@` URL. Used by scripts/run-hook.sh so a
// hook that prints a secret never leaves it in a log.
import { redact } from "../log/redact";

const names = (process.env.SAFE_DEPLOY_SECRET_ENV_NAMES ?? "").split(/\s+/).filter(Boolean);
const secrets = names.map((n) => process.env[n] ?? "").filter((v) => v.length > 0);
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
