-- Enqueues a job: writes its record and appends its id to the jobs stream, in
-- one step, so that a worker never reads an id whose record is not there yet.
--
-- The image never passes through this script: Redis's Lua hashes every byte
-- of every string it is handed (2.5 ms of Redis's one thread for a 466 KB
-- PNG, 12 ms for a 12 MP JPEG). The caller (submit.rs) runs, in one
-- MULTI/EXEC: HSET record image <bytes>, EXPIRE record (a grace), then this
-- script, which finds the record holding only the image, completes it and
-- PERSISTs it, or deletes it when it refuses the job.
--
-- KEYS[1] job record (hash)   KEYS[2] jobs stream   KEYS[3] stats hash
-- KEYS[4] (optional) the Idempotency-Key's key
-- ARGV[1] job id   ARGV[2] spec JSON   ARGV[3] result TTL (s)
-- ARGV[4] most entries the stream may hold (0: no limit)
-- ARGV[5] (with KEYS[4]) job key prefix   ARGV[6] (with KEYS[4]) request fingerprint
--
-- Returns {stream entry id, submitted_us}; with an Idempotency-Key already
-- used for a job that still exists, {'existing', job id, fingerprint} and
-- nothing is kept. An error reply if the record already exists (ids are
-- never reused), or 'FULL ...' if the queue is full.

-- Idempotency-Key (issue 7): the same key within the result TTL names the
-- same job. The check and the claim of the key are in this script, so two
-- concurrent requests with one key cannot both create a job. It comes before
-- the backpressure check: a replay creates nothing, so a full queue must not
-- refuse it.
if KEYS[4] then
  local held = redis.call('GET', KEYS[4])
  if held then
    local id, fingerprint = string.match(held, '^(%S+) (%S*)$')
    if id and redis.call('EXISTS', ARGV[5] .. id) == 1 then
      redis.call('DEL', KEYS[1])
      return {'existing', id, fingerprint}
    end
  end
end

-- A record that has a state is a job's (the caller's HSET wrote only the
-- image).
if redis.call('HEXISTS', KEYS[1], 'state') == 1 then
  return redis.error_reply('EXISTS job ' .. ARGV[1] .. ' already exists')
end

-- Backpressure: a full queue refuses new jobs instead of growing Redis
-- without bound. XLEN counts queued and in-flight jobs (finished entries are
-- deleted). Nothing is kept but the counter, so a refused job leaves no
-- trace to clean up.
local max_depth = tonumber(ARGV[4]) or 0
if max_depth > 0 then
  local depth = redis.call('XLEN', KEYS[2])
  if depth >= max_depth then
    redis.call('HINCRBY', KEYS[3], 'rejected_full', 1)
    redis.call('DEL', KEYS[1])
    return redis.error_reply('FULL ' .. depth .. ' ' .. max_depth)
  end
end

-- Microseconds since the epoch, built as a string: Lua's numbers would print
-- a 16-digit integer in exponent notation.
local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]

if redis.call('HEXISTS', KEYS[1], 'image') == 0 then
  return redis.error_reply('ERR submit: the record holds no image (HSET it first, in the same transaction)')
end
redis.call('PERSIST', KEYS[1])
-- The entry first, so that the record is written once: no worker reads the
-- entry before this script has ended.
local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[1],
  'spec', ARGV[2],
  'state', 'queued',
  'attempts', 0,
  'submitted_us', now,
  'result_ttl', ARGV[3],
  'entry', entry)
redis.call('HINCRBY', KEYS[3], 'submitted', 1)

-- Idempotency-Key (issue 7): remember the job under the key for the result TTL.
if KEYS[4] then
  redis.call('SET', KEYS[4], ARGV[1] .. ' ' .. ARGV[6], 'EX', ARGV[3])
end
return {entry, now}
