// A loopback STAND-IN for Render's REST API (api.render.com cannot be reached from the tests): only the
// documented endpoints the program calls, with the documented shapes (api-docs.render.com: Trigger
// deploy, Retrieve deploy, List deploys, Roll back deploy). It is not Render: statuses advance one per
// poll along a script the test sets.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

/** One deploy as the stand-in keeps it. */
export interface StandInDeploy {
  id: string;
  status: string;
  commit: { id: string };
  trigger: string;
  /** Statuses still to go through, one per GET of this deploy; the last one stays. */
  script: string[];
}

/** The stand-in server and what it saw. */
export interface RenderStandIn {
  apiUrl: string;
  apiKey: string;
  serviceId: string;
  deploys: StandInDeploy[];
  /** `METHOD path` of every request, in order. */
  requests: string[];
  /** Bodies of POST requests, in order. */
  bodies: unknown[];
  /** Statuses a new deploy goes through (default: build_in_progress, update_in_progress, live). */
  progress: string[];
  /** The next requests answer these HTTP statuses (with Retry-After when given) before behaving. */
  failNext(statuses: number[], retryAfter?: string): void;
  close(): Promise<void>;
}

/** Starts the stand-in with one live deploy of `liveCommit` already on the service. */
export async function startRenderStandIn(liveCommit = "c0ffee0"): Promise<RenderStandIn> {
  const serviceId = "srv-standin1";
  const apiKey = "rnd_standInKey123";
  let n = 0;
  const failures: Array<{ status: number; retryAfter?: string }> = [];
  const s: Omit<RenderStandIn, "apiUrl" | "close"> = {
    apiKey,
    serviceId,
    deploys: [{ id: "dep-live0", status: "live", commit: { id: liveCommit }, trigger: "manual", script: [] }],
    requests: [],
    bodies: [],
    progress: ["build_in_progress", "update_in_progress", "live"],
    failNext(statuses, retryAfter) {
      failures.push(...statuses.map((status) => ({ status, retryAfter })));
    },
  };
  const view = (d: StandInDeploy) => ({ id: d.id, status: d.status, commit: d.commit, trigger: d.trigger });
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const newDeploy = (commit: string, trigger: string): StandInDeploy => {
    const d = {
      id: `dep-${++n}`,
      status: "created",
      commit: { id: commit },
      trigger,
      script: [...s.progress],
    };
    s.deploys.unshift(d);
    return d;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : undefined;
    const url = new URL(req.url ?? "/", "http://x");
    s.requests.push(`${req.method} ${url.pathname}`);
    if (req.method === "POST") s.bodies.push(body);
    if (req.headers.authorization !== `Bearer ${apiKey}`) return send(res, 401, { message: "Unauthorized" });
    const f = failures.shift();
    if (f)
      return send(
        res,
        f.status,
        { message: "stand-in failure" },
        f.retryAfter ? { "retry-after": f.retryAfter } : {},
      );
    const m = /^\/v1\/services\/([^/]+)\/(deploys|rollback)(?:\/([^/]+))?$/.exec(url.pathname);
    if (!m || m[1] !== serviceId) return send(res, 404, { message: "Not Found" });
    if (m[2] === "deploys" && !m[3] && req.method === "GET") {
      return send(
        res,
        200,
        s.deploys.map((d) => ({ deploy: view(d), cursor: d.id })),
      );
    }
    if (m[2] === "deploys" && !m[3] && req.method === "POST") {
      return send(res, 201, view(newDeploy(body?.commitId ?? "head", "api")));
    }
    if (m[2] === "deploys" && m[3] && req.method === "GET") {
      const d = s.deploys.find((x) => x.id === m[3]);
      if (!d) return send(res, 404, { message: "Not Found" });
      if (d.script.length > 0) d.status = d.script.length > 1 ? d.script.shift()! : d.script[0];
      if (d.status === "live") {
        for (const o of s.deploys) if (o !== d && o.status === "live") o.status = "deactivated";
      }
      return send(res, 200, view(d));
    }
    if (m[2] === "rollback" && req.method === "POST") {
      const target = s.deploys.find((x) => x.id === body?.deployId);
      if (!target) return send(res, 404, { message: "Not Found" });
      const d = newDeploy(target.commit.id, "rollback");
      d.script = ["update_in_progress", "live"];
      return send(res, 201, view(d));
    }
    return send(res, 404, { message: "Not Found" });
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e) => send(res, 500, { message: String(e) }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address() as { port: number };
  return {
    ...s,
    get deploys() {
      return s.deploys;
    },
    get progress() {
      return s.progress;
    },
    set progress(v: string[]) {
      s.progress = v;
    },
    apiUrl: `http://127.0.0.1:${addr.port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
