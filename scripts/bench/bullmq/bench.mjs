// One round of BullMQ for scripts/bench-bullmq: WORKERS worker processes
// (worker.mjs) and a producer that adds JOBS no-op jobs, each carrying the
// image payload of verdict's no-op bench (IMAGE_BYTES bytes, base64: the size
// of its 64x64 PNG; BullMQ never decodes it) and one sentence, in
// addBulk batches of BULK (BullMQ's fastest way in; no HTTP). Jobs/s from the
// first add to the last completion; Redis's CPU time (INFO cpu) and commands
// (INFO commandstats) over the same span, the polling included. Prints one
// JSON object.
//
//   node bench.mjs SOCKET [JOBS] [WORKERS] [CONCURRENCY] [BULK] [IMAGE_BYTES]
import { fork } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { Queue } from "bullmq";
import { Redis } from "ioredis";

const [socket, jobs = "20000", workers = "2", concurrency = "64", bulk = "1000", imageBytes = "329"] =
  process.argv.slice(2);
const JOBS = Number(jobs);
const connection = { path: socket, maxRetriesPerRequest: null };
const image = Buffer.alloc(Number(imageBytes), 0x5a).toString("base64");

async function redisUsage(client) {
  const info = await client.call("INFO", "cpu", "commandstats");
  let cpu = 0;
  let calls = 0;
  for (const line of info.split("\r\n")) {
    const [key, value] = line.split(":");
    if (key === "used_cpu_user" || key === "used_cpu_sys") cpu += Number(value);
    if (key.startsWith("cmdstat_")) calls += Number(/calls=(\d+)/.exec(value)[1]);
  }
  return { cpu, calls };
}

const queue = new Queue("bench", { connection });
await queue.obliterate({ force: true });
const children = [];
for (let i = 0; i < Number(workers); i++) {
  const child = fork(new URL("./worker.mjs", import.meta.url), [], {
    env: { ...process.env, REDIS_SOCKET: socket, CONCURRENCY: concurrency },
  });
  await new Promise((resolve) => child.once("message", resolve));
  children.push(child);
}
// A connection of its own for INFO and the end's polling.
const client = new Redis({ path: socket });
// The end is polled (a ZCARD every 10 ms), not followed through
// QueueEvents: its stream is trimmed, and reading it costs Redis work that is
// no part of running jobs.
async function finished() {
  while ((await client.zcard("bull:bench:completed")) < JOBS) await sleep(10);
}
const before = await redisUsage(client);
const start = process.hrtime.bigint();
for (let n = 0; n < JOBS; n += Number(bulk)) {
  const batch = [];
  for (let i = n; i < Math.min(JOBS, n + Number(bulk)); i++) {
    batch.push({ name: "judge", data: { image, texts: ["This is a ceramic coffee cup."], n: i } });
  }
  await queue.addBulk(batch);
}
const submitted = process.hrtime.bigint();
await finished();
const end = process.hrtime.bigint();
const after = await redisUsage(client);
const completed = await queue.getCompletedCount();
await Promise.all(
  children.map((child) => new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  })),
);
await queue.close();
client.disconnect();
const total = Number(end - start) / 1e9;
console.log(JSON.stringify({
  jobs: JOBS,
  completed,
  workers: Number(workers),
  concurrency: Number(concurrency),
  bulk: Number(bulk),
  jobs_per_s: JOBS / total,
  total_s: total,
  submit_s: Number(submitted - start) / 1e9,
  redis_cpu_s: after.cpu - before.cpu,
  redis_cpu_us_per_job: ((after.cpu - before.cpu) * 1e6) / JOBS,
  redis_calls_per_job: (after.calls - before.calls) / JOBS,
}));
process.exit(completed === JOBS ? 0 : 1);
