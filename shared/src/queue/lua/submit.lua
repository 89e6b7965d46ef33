-- Enqueues a job: writes its record and appends its id to the jobs stream, in
-- one step, so that a worker never reads an id whose record is not there yet.
--
-- KEYS[1] job record (hash)   KEYS[2] jobs stream   KEYS[3] stats hash
-- ARGV[1] job id   ARGV[2] spec JSON   ARGV[3] image bytes   ARGV[4] result TTL (s)
-- ARGV[5] most entries the stream may hold (0: no limit)
--
-- Returns {stream entry id, submitted_us}, or an error reply if the record
-- already exists (ids are never reused), or 'FULL ...' if the queue is full.

if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.error_reply('EXISTS job ' .. ARGV[1] .. ' already exists')
end

-- Backpressure: a full queue refuses new jobs instead of growing Redis
-- without bound. XLEN counts queued and in-flight jobs (finished entries are
-- deleted). Nothing is written but the counter, so a refused job leaves no
-- trace to clean up.
local max_depth = tonumber(ARGV[5]) or 0
if max_depth > 0 then
  local depth = redis.call('XLEN', KEYS[2])
  if depth >= max_depth then
    redis.call('HINCRBY', KEYS[3], 'rejected_full', 1)
    return redis.error_reply('FULL ' .. depth .. ' ' .. max_depth)
  end
end

-- Microseconds since the epoch, built as a string: Lua's numbers would print
-- a 16-digit integer in exponent notation.
local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]

redis.call('HSET', KEYS[1],
  'spec', ARGV[2],
  'image', ARGV[3],
  'state', 'queued',
  'attempts', 0,
  'submitted_us', now,
  'result_ttl', ARGV[4])
local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[1], 'entry', entry)
redis.call('HINCRBY', KEYS[3], 'submitted', 1)
return {entry, now}
