// Benchmark (not a test): how fast the gate notices a release turning healthy, and how long it takes to
// give up on one that never does. Targets (issue 5): pass <= one poll interval + 100 ms after the app
// turns healthy; give up <= retries x (delay + timeout) + 1 s. Prints measured figures and ratios.
import { runGate } from "../src/core/health/run";
import { startTarget } from "../test/helpers/http-targets";

async function turnsHealthy(delaySeconds: number, healthyAfterMs: number) {
  let healthyAt = Infinity;
  const t = await startTarget(() => (Date.now() >= healthyAt ? [200] : [503]));
  const began = Date.now();
  healthyAt = began + healthyAfterMs;
  const r = await runGate({ url: t.url, retries: 1000, delaySeconds, timeoutSeconds: 1 });
  const lag = Math.round(Date.now() - healthyAt);
  await t.close();
  if (!r.ok) throw new Error(r.message);
  return lag;
}

async function givesUp(retries: number, delaySeconds: number, timeoutSeconds: number) {
  const t = await startTarget(() => "hang");
  const began = Date.now();
  const r = await runGate({ url: t.url, retries, delaySeconds, timeoutSeconds });
  const took = Date.now() - began;
  await t.close();
  if (r.ok) throw new Error("a hanging app passed");
  return took;
}

async function main() {
  console.log("time from healthy to gate passing (5 runs each, app turns healthy at a random moment)");
  console.log("delay_ms  worst_lag_ms  mean_lag_ms  bound_ms  worst/bound");
  for (const delay of [0.05, 0.1, 0.25, 0.5, 1]) {
    const lags: number[] = [];
    for (let i = 0; i < 5; i++) lags.push(await turnsHealthy(delay, 150 + Math.random() * delay * 3000));
    const worst = Math.max(...lags);
    const mean = lags.reduce((a, b) => a + b, 0) / lags.length;
    const bound = delay * 1000 + 100;
    console.log(
      `${String(delay * 1000).padStart(8)}  ${String(worst).padStart(12)}  ${mean.toFixed(0).padStart(11)}  ${String(bound).padStart(8)}  ${(worst / bound).toFixed(2).padStart(11)}`,
    );
  }
  console.log("\ntime to give up on an app that hangs every request");
  console.log("retries  delay_ms  timeout_ms  took_ms  bound_ms  took/bound");
  for (const [retries, delay, timeout] of [
    [3, 0.1, 0.2],
    [3, 0.5, 0.5],
    [5, 0.2, 0.3],
    [10, 0.05, 0.1],
  ]) {
    const took = await givesUp(retries, delay, timeout);
    const bound = retries * (delay + timeout) * 1000 + 1000;
    console.log(
      `${String(retries).padStart(7)}  ${String(delay * 1000).padStart(8)}  ${String(timeout * 1000).padStart(10)}  ${String(took).padStart(7)}  ${String(bound).padStart(8)}  ${(took / bound).toFixed(2).padStart(10)}`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
