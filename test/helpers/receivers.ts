import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as net from "node:net";
import { SMTPServer } from "smtp-server";

/** One request a receiver got. */
export interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver on 127.0.0.1; `respond` picks each reply (status, or "hang" to never answer). */
export async function startHttpReceiver(respond: (n: number, req: Received) => number | "hang" = () => 200) {
  const received: Received[] = [];
  const hanging: http.ServerResponse[] = [];
  let closing = false;
  /** Hanging requests whose client gave up and closed the connection (before `close()`). */
  let abandoned = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const r = { path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
      received.push(r);
      const what = respond(received.length, r);
      if (what === "hang") {
        hanging.push(res);
        res.on("close", () => closing || abandoned++);
        return;
      }
      res.writeHead(what, { "content-type": "text/plain" }).end(what === 200 ? "ok" : "nope");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    received,
    abandoned: () => abandoned,
    url: (p: string) => `http://127.0.0.1:${port}${p}`,
    async close() {
      closing = true;
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port on 127.0.0.1 nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** One email a real SMTP server received. */
export interface ReceivedMail {
  from: string;
  to: string[];
  user: string;
  raw: string;
}

/**
 * A real SMTP server (npm `smtp-server`) on `host` (default 127.0.0.1) requiring user/password; plain
 * text, no STARTTLS (what a network attacker who strips STARTTLS shows a client). `logins` records every
 * AUTH it was sent, accepted or not.
 */
export async function startSmtpReceiver(user: string, password: string, host = "127.0.0.1") {
  const mails: ReceivedMail[] = [];
  const logins: Array<{ username: string; password: string }> = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      logins.push({ username: auth.username ?? "", password: auth.password ?? "" });
      if (auth.username === user && auth.password === password) return cb(null, { user });
      return cb(new Error("Invalid username or password"));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
          to: session.envelope.rcptTo.map((r) => r.address),
          user: String(session.user ?? ""),
          raw: Buffer.concat(chunks).toString("utf8"),
        });
        cb();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    mails,
    logins,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
