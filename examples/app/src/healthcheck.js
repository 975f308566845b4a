"use strict";

// Docker HEALTHCHECK probe: slim Node images have no curl or wget, so Node itself asks /health.
// Exit 0 only on HTTP 200; any error, other status or timeout is exit 1 ("unhealthy").
const http = require("node:http");

const port = Number(process.env.PORT || 3000);
const req = http.get({ host: "127.0.0.1", port, path: "/health", timeout: 4000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on("timeout", () => req.destroy(new Error("timeout")));
req.on("error", () => process.exit(1));
