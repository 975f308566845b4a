// Placeholder: replaced by the real wiring in the next commit.
import type { RollbackOpts } from "./commands/rollback";
import type { StatusOpts } from "./commands/status";
import type { UpOpts } from "./commands/up";
import { CannotRunError } from "../core/errors";

/** `up --stack S`. */
export async function runUp(o: UpOpts): Promise<void> {
  throw new CannotRunError(`up --stack ${o.stack}: not wired yet`);
}
/** `rollback --stack S`. */
export async function runRollback(o: RollbackOpts): Promise<void> {
  throw new CannotRunError(`rollback --stack ${o.stack}: not wired yet`);
}
/** `status --stack S`. */
export async function runStatus(o: StatusOpts): Promise<number> {
  throw new CannotRunError(`status --stack ${o.stack}: not wired yet`);
}
