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

local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]

redis.call('HSET', KEYS[1], 'state', 'cancelled', 'error', ARGV[5], 'finished_us', now)
redis.call('HDEL', KEYS[1], 'image')
local ttl = tonumber(redis.call('HGET', KEYS[1], 'result_ttl')) or tonumber(ARGV[4])
redis.call('EXPIRE', KEYS[1], ttl)
local entry = redis.call('HGET', KEYS[1], 'entry')
if entry then
  redis.call('XACK', KEYS[2], ARGV[1], entry)
  redis.call('XDEL', KEYS[2], entry)
end
redis.call('HINCRBY', KEYS[3], 'cancelled', 1)

-- Callbacks (issue 7): a job submitted with a callback_url gets exactly one
-- entry in the callbacks stream, here where it ends (once: a job that already
-- ended returned above). The api processes send it (docs/protocol.md).
local ok, spec = pcall(cjson.decode, redis.call('HGET', KEYS[1], 'spec') or '')
if ok and type(spec) == 'table' and type(spec.callback_url) == 'string' then
  redis.call('XADD', KEYS[4], '*', 'job', ARGV[3])
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return {'cancelled', now}
