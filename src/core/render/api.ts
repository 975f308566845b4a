// Issue 17, `app.target: render`: Render's public REST API (api-docs.render.com): trigger a deploy,
// wait for it to go live or fail, roll back to a previous deploy. The API key is sent only in the
// Authorization header; no message built here contains it.
import { setTimeout as sleep } from "node:timers/promises";
import { CannotRunError, CheckFailedError, ConfigError } from "../errors";
import { retryDelays } from "../notify";

/** How to reach one Render service. */
export interface RenderTarget {
  /** `https://api.render.com` (a stand-in in tests). */
  apiUrl: string;
  /** Secret. */
  apiKey: string;
  serviceId: string;
  /** Attempts of one request when Render answers 429/5xx or cannot be reached (default 4). */
  attempts?: number;
  /** First pause between attempts in ms, doubled each time (default 1000, capped at 10 000). */
  baseDelayMs?: number;
  /** Time limit of one request (default 30 000 ms). */
  requestTimeoutMs?: number;
}

/** A deploy as the API describes it (the fields the program reads). */
export interface RenderDeployInfo {
  id: string;
  status: string;
  commitId?: string;
}

/** Statuses after which a deploy will not go live. */
export const FAILED_STATUSES = [
  "build_failed",
  "update_failed",
  "canceled",
  "deactivated",
  "pre_deploy_failed",
];

/** A deploy that ended without going live, or did not go live in time: carries the deploy. */
export class RenderDeployError extends CheckFailedError {
  constructor(
    message: string,
    readonly deployId: string,
  ) {
    super(message);
  }
}

/** Whether an HTTP status is worth another attempt (rate limit, server error). */
export function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/** The wait before the next attempt: Render's `Retry-After` (seconds) when given, capped, else the schedule. */
export function nextDelayMs(retryAfter: string | null, scheduled: number, capMs = 60_000): number {
  const s = retryAfter === null ? NaN : Number(retryAfter);
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, capMs) : scheduled;
}

function deployOf(raw: unknown): RenderDeployInfo | undefined {
  const d = raw as { id?: unknown; status?: unknown; commit?: { id?: unknown } } | null;
  if (!d || typeof d.id !== "string") return undefined;
  return {
    id: d.id,
    status: typeof d.status === "string" ? d.status : "unknown",
    ...(typeof d.commit?.id === "string" ? { commitId: d.commit.id } : {}),
  };
}

/**
 * One API call with retries on 429/5xx/network errors (the project's retry schedule); 401/403 and other
 * 4xx fail at once with the fix, since another attempt cannot pass.
 */
export async function renderRequest(
  t: RenderTarget,
  method: "GET" | "POST",
  path: string,
  body?: unknown,
): Promise<unknown> {
  const delays = retryDelays({
    attempts: t.attempts ?? 4,
    baseDelayMs: t.baseDelayMs ?? 1000,
    maxDelayMs: 10_000,
  });
  const what = `Render API ${method} ${path}`;
  for (let attempt = 0; ; attempt++) {
    let detail: string;
    let wait = delays[attempt];
    try {
      const res = await fetch(new URL(path, t.apiUrl), {
        method,
        headers: {
          authorization: `Bearer ${t.apiKey}`,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(t.requestTimeoutMs ?? 30_000),
      });
      const text = await res.text();
      if (res.ok) return text ? JSON.parse(text) : {};
      if (res.status === 401 || res.status === 403) {
        throw new ConfigError(
          `${what} refused the API key (HTTP ${res.status}): create a key in Render's Account Settings and set it with \`pulumi config set --secret renderApiKey <key>\``,
        );
      }
      if (res.status === 404) {
        throw new ConfigError(
          `${what} answered 404: no such service or deploy for this key; check \`app.render.serviceId\` (${t.serviceId})`,
        );
      }
      detail = `HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""}`;
      if (!retryable(res.status)) throw new CannotRunError(`${what} failed with ${detail}`);
      if (wait !== undefined) wait = nextDelayMs(res.headers.get("retry-after"), wait);
    } catch (e) {
      if (e instanceof ConfigError || e instanceof CannotRunError) throw e;
      const cause = (e as { cause?: unknown }).cause;
      detail = `${(e as Error).message}${cause instanceof Error ? `: ${cause.message}` : ""}`;
    }
    if (wait === undefined) {
      throw new CannotRunError(
        `${what} still failed after ${attempt + 1} attempts (${detail}): check https://status.render.com and run the deploy again`,
      );
    }
    await sleep(wait);
  }
}

const base = (t: RenderTarget) => `/v1/services/${encodeURIComponent(t.serviceId)}`;

/** The service's deploy that is live now, if any (the newest first). */
export async function liveDeploy(t: RenderTarget): Promise<RenderDeployInfo | undefined> {
  const list = await renderRequest(t, "GET", `${base(t)}/deploys?limit=20`);
  const items = Array.isArray(list) ? list : [];
  return items
    .map((i) => deployOf((i as { deploy?: unknown }).deploy ?? i))
    .find((d): d is RenderDeployInfo => d?.status === "live");
}

/** Triggers a deploy of `commitId` (or `imageUrl` for an image-backed service). */
export async function triggerDeploy(
  t: RenderTarget,
  what: { commitId?: string; imageUrl?: string },
): Promise<RenderDeployInfo> {
  const body = { clearCache: "do_not_clear", ...what };
  const d = deployOf(await renderRequest(t, "POST", `${base(t)}/deploys`, body));
  if (!d) throw new CannotRunError(`Render accepted the deploy of ${t.serviceId} but returned no deploy id`);
  return d;
}

/** Render's rollback: redeploys a previous deploy's build (no rebuild). */
export async function rollbackDeploy(t: RenderTarget, deployId: string): Promise<RenderDeployInfo> {
  const d = deployOf(await renderRequest(t, "POST", `${base(t)}/rollback`, { deployId }));
  if (!d) throw new CannotRunError(`Render accepted the rollback to ${deployId} but returned no deploy id`);
  return d;
}

/** Polls a deploy until it is live; fails when it ends otherwise or is not live by the deadline. */
export async function waitLive(
  t: RenderTarget,
  deployId: string,
  opts: { timeoutSeconds: number; pollSeconds: number; now?: () => number },
): Promise<RenderDeployInfo> {
  const now = opts.now ?? Date.now;
  const deadline = now() + opts.timeoutSeconds * 1000;
  for (;;) {
    const d = deployOf(await renderRequest(t, "GET", `${base(t)}/deploys/${encodeURIComponent(deployId)}`));
    const status = d?.status ?? "unknown";
    if (status === "live") return d!;
    if (FAILED_STATUSES.includes(status)) {
      throw new RenderDeployError(
        `Render deploy ${deployId} of ${t.serviceId} ended ${status}: read its logs in the Render dashboard; the previous deploy stays live`,
        deployId,
      );
    }
    if (now() >= deadline) {
      throw new RenderDeployError(
        `Render deploy ${deployId} of ${t.serviceId} is not live after ${opts.timeoutSeconds} s (status ${status}): raise \`app.render.deployTimeoutSeconds\` or check the deploy in the Render dashboard`,
        deployId,
      );
    }
    await sleep(opts.pollSeconds * 1000);
  }
}

/** What one release did on Render: the deploy that went live and the one it replaced. */
export interface RenderRelease {
  deployId: string;
  /** The deploy live before this release ("" for the first one): a rollback goes back to it. */
  previousDeployId: string;
  previousCommit: string;
}

/**
 * One release: remembers the live deploy, then either rolls back to `rollbackTo` (a deploy id recorded
 * by the release being re-applied) or triggers a deploy of the commit/image, and waits for it to go live.
 * A deploy that fails or times out is thrown as `RenderDeployError` with the release it started in
 * `release`, so the caller can record it (a later rollback must know what to go back to).
 */
export async function renderRelease(
  t: RenderTarget,
  spec: {
    commitId?: string;
    imageUrl?: string;
    rollbackTo?: string;
    timeoutSeconds: number;
    pollSeconds: number;
  },
): Promise<RenderRelease> {
  const prev = await liveDeploy(t);
  const started = spec.rollbackTo
    ? await rollbackDeploy(t, spec.rollbackTo)
    : await triggerDeploy(t, spec.imageUrl ? { imageUrl: spec.imageUrl } : { commitId: spec.commitId });
  const release: RenderRelease = {
    deployId: started.id,
    previousDeployId: prev?.id ?? "",
    previousCommit: prev?.commitId ?? "",
  };
  try {
    await waitLive(t, started.id, spec);
  } catch (e) {
    throw Object.assign(e as Error, { release });
  }
  return release;
}
