/**
 * GET /health every 20 ms from a process of its own, so that the latencies it measures are the
 * server's and not those of a test process busy building and sending large bodies. Started with the
 * base URL; it stops when its stdin ends and prints the latencies (ms, in order) as JSON.
 */
const base = process.argv[2];
let going = true;
const latencies: number[] = [];
process.stdin.on('data', () => {});
process.stdin.on('end', () => { going = false; });
while (going) {
  const started = performance.now();
  try {
    const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(30_000) });
    await r.arrayBuffer();
    latencies.push(performance.now() - started);
  } catch {
    latencies.push(Infinity);
  }
  await new Promise((r) => setTimeout(r, 20));
}
process.stdout.write(JSON.stringify(latencies.map((x) => (Number.isFinite(x) ? x : 1e9))));
