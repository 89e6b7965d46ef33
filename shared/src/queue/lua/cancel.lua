-- Cancels a job that no worker has started: marks it cancelled, drops the
-- image, starts the result TTL, removes its stream entry, counts it and
-- announces it, in one step. A job in any other state is left as it is:
-- a running one finishes (a worker is already judging it), a finished one
-- keeps its ending.
--
-- A worker that read the entry just before it was removed finds the job
-- cancelled when it starts it (start.lua skips terminal jobs).
--
-- KEYS[1] job record   KEYS[2] jobs stream   KEYS[3] stats hash   KEYS[4] callbacks stream
-- ARGV[1] consumer group   ARGV[2] events channel   ARGV[3] job id
-- ARGV[4] default result TTL (s)   ARGV[5] error JSON stored on the job
--
-- Returns {'cancelled', finished_us}, {'refused', state} or {'missing'}.

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'missing'}
end
if state ~= 'queued' then
  return {'refused', state}
end

local now = redis_now_us()

redis.call('HSET', KEYS[1], 'state', 'cancelled', 'error', ARGV[5], 'finished_us', now)
redis.call('HDEL', KEYS[1], 'image')
expire_ended(KEYS[1], ARGV[4])
local entry = redis.call('HGET', KEYS[1], 'entry')
if entry then
  redis.call('XACK', KEYS[2], ARGV[1], entry)
  redis.call('XDEL', KEYS[2], entry)
end
redis.call('HINCRBY', KEYS[3], 'cancelled', 1)

announce_end(KEYS[1], KEYS[4], ARGV[2], ARGV[3])
return {'cancelled', now}
