-- Gives up on a job that was started as often as allowed without finishing:
-- appends it to the dead-letter stream with its last error, marks it failed,
-- acknowledges and deletes its entry, counts it and announces it, in one step.
-- A poison job (one that kills every worker that runs it) ends here instead
-- of being delivered forever.
--
-- The image is kept (until the record's result TTL) so that an operator can
-- look at what killed the workers.
--
-- KEYS[1] job record   KEYS[2] jobs stream   KEYS[3] stats hash   KEYS[4] dead-letter stream
-- KEYS[5] callbacks stream   KEYS[6] recent failures list
-- ARGV[1] consumer group   ARGV[2] stream entry id   ARGV[3] worker name
-- ARGV[4] most starts allowed   ARGV[5] events channel   ARGV[6] job id
-- ARGV[7] default result TTL (s)   ARGV[8] dead-letter stream length (approximate)
-- ARGV[9] minute activity key prefix   ARGV[10] its TTL (s)   ARGV[11] recent failures kept
--
-- Returns {'dead_lettered', finished_us, error JSON, dead-letter entry id},
-- {'stale', state} (it had already ended) or {'missing'}.

local refused = refuse_gone_or_ended(KEYS[1], KEYS[2], ARGV[1], ARGV[2], 'stale')
if refused then
  return refused
end

local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 0
local previous = redis.call('HGET', KEYS[1], 'worker') or 'a worker'

-- The last error: a transient failure the worker recorded (retry.lua), else
-- the worker that started it last went away without finishing it.
local last_code, last_message = 'worker_lost',
  previous .. ' started it and stopped before finishing it (crashed, was killed, hung or lost Redis)'
local recorded = redis.call('HGET', KEYS[1], 'last_error')
if recorded then
  local ok, decoded = pcall(cjson.decode, recorded)
  if ok and type(decoded) == 'table' and decoded.code and decoded.message then
    last_code, last_message = tostring(decoded.code), tostring(decoded.message)
  end
end
local last_error = cjson.encode({code = last_code, message = last_message})
local final_error = cjson.encode({
  code = 'attempts_exhausted',
  message = 'started ' .. attempts .. ' times (the limit is ' .. ARGV[4] ..
    ') without finishing; moved to the dead-letter stream. Last error: ' ..
    last_code .. ': ' .. last_message,
})

local now = redis_now_us()

redis.call('HSET', KEYS[1], 'state', 'failed', 'error', final_error, 'finished_us', now)
expire_ended(KEYS[1], ARGV[7])
local dead = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*',
  'job', ARGV[6],
  'attempts', attempts,
  'error', final_error,
  'last_error', last_error,
  'worker', ARGV[3],
  'entry', ARGV[2],
  'at_us', now)
redis.call('HSET', KEYS[1], 'dead_entry', dead)
drop_entries(KEYS[2], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'failed', 1)
redis.call('HINCRBY', KEYS[3], 'dead_lettered', 1)
local minute = minute_key(ARGV[9], now)
redis.call('HINCRBY', minute, 'jobs:failed', 1)
redis.call('EXPIRE', minute, ARGV[10])
remember_failure(KEYS[6], ARGV[11], ARGV[6], final_error, ARGV[3], now, true)

announce_end(KEYS[1], KEYS[5], ARGV[5], ARGV[6])
return {'dead_lettered', now, final_error, dead}
