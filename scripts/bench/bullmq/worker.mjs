// One BullMQ worker process of scripts/bench-bullmq: takes the queue's jobs
// and completes each at once with a verdict-shaped result (the no-op judge's
// counterpart). Its best configuration for no-op work: many jobs in flight
// per process (CONCURRENCY), results kept as BullMQ keeps them by default.
//
//   REDIS_SOCKET=/path/redis.sock CONCURRENCY=64 node worker.mjs
import { Worker } from "bullmq";

const connection = { path: process.env.REDIS_SOCKET, maxRetriesPerRequest: null };
const concurrency = Number(process.env.CONCURRENCY || 64);

const worker = new Worker(
  "bench",
  async (job) => ({
    verdicts: job.data.texts.map((text) => ({ text, label: "maybe", scores: { yes: 0, no: 0, maybe: 1 } })),
  }),
  { connection, concurrency, autorun: true },
);
worker.on("error", (err) => {
  console.error(`bullmq worker: ${err.message}`);
});
process.on("SIGTERM", async () => {
  // Jobs in flight are abandoned (the round is over); never wait on Redis.
  setTimeout(() => process.exit(0), 1000).unref();
  await worker.close(true);
  process.exit(0);
});
process.send?.("ready");
