-- A worker finishes a job: stores the verdicts (or the error), sets the state,
-- drops the image, starts the result TTL, acknowledges and deletes the stream
-- entry, counts it and announces it, all in one step, so that no reader ever
-- sees half a finished job.
--
-- A job that already ended is never touched again: a late result (from a
-- worker presumed dead whose job was claimed and finished by another) is
-- refused and counted, and the job keeps its first ending.
--
-- KEYS[1] job record   KEYS[2] jobs stream   KEYS[3] stats hash   KEYS[4] callbacks stream
-- KEYS[5] metrics hash   KEYS[6] recent failures list
-- ARGV[1] consumer group   ARGV[2] stream entry id   ARGV[3] worker name
-- ARGV[4] 'done' or 'failed'   ARGV[5] results JSON (done) or error JSON (failed)
-- ARGV[6] events channel   ARGV[7] job id   ARGV[8] default result TTL (s)
-- ARGV[9] minute activity key prefix   ARGV[10] its TTL (s)
-- ARGV[11] recent failures kept
-- ARGV[12..] the worker's metrics for this job, in threes: 'count' or
--           'seconds', field, amount (added only when this call finishes the
--           job, to the metrics hash and to this minute's activity)
--
-- Returns {'finished', finished_us}, {'stale', state} or {'missing'}.

if ARGV[4] ~= 'done' and ARGV[4] ~= 'failed' then
  return redis.error_reply('ERR finish: outcome must be done or failed, not ' .. ARGV[4])
end

local refused = refuse_gone_or_ended('stale')
if refused then
  if refused[1] == 'stale' then
    redis.call('HINCRBY', KEYS[3], 'late_finishes', 1)
  end
  return refused
end

local now = redis_now_us()

local payload_field = 'results'
if ARGV[4] == 'failed' then
  payload_field = 'error'
end
redis.call('HSET', KEYS[1],
  'state', ARGV[4],
  payload_field, ARGV[5],
  'worker', ARGV[3],
  'finished_us', now)
redis.call('HDEL', KEYS[1], 'image')
expire_ended(KEYS[1], ARGV[8])
drop_entry()
redis.call('HINCRBY', KEYS[3], ARGV[4], 1)

local minute = minute_key(ARGV[9], now, ARGV[10])
redis.call('HINCRBY', minute, 'jobs:' .. ARGV[4], 1)
for i = 12, #ARGV - 2, 3 do
  for _, hash in ipairs({KEYS[5], minute}) do
    if ARGV[i] == 'seconds' then
      redis.call('HINCRBYFLOAT', hash, ARGV[i + 1], ARGV[i + 2])
    else
      redis.call('HINCRBY', hash, ARGV[i + 1], ARGV[i + 2])
    end
  end
end
if ARGV[4] == 'failed' then
  remember_failure(KEYS[6], ARGV[11], ARGV[7], ARGV[5], ARGV[3], now, false)
end

announce_end(KEYS[1], KEYS[4], ARGV[6], ARGV[7])
return {'finished', now}
