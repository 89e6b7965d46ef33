-- A worker takes a job it read from the stream: marks it running and hands
-- back what the worker needs to judge it, in one step.
--
-- KEYS[1] job record   KEYS[2] jobs stream
-- ARGV[1] consumer group   ARGV[2] stream entry id   ARGV[3] worker name
--
-- Returns one of:
--   {'run', spec, image, submitted_us, started_us, attempts}
--   {'skip', state}   the job already ended (cancelled, or finished by another
--                     worker after a reclaim): its entry is acknowledged and
--                     deleted, and the worker moves on
--   {'missing'}       no record (expired or deleted): the entry is dropped

local function drop_entry()
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  drop_entry()
  return {'missing'}
end
if state == 'done' or state == 'failed' or state == 'cancelled' then
  drop_entry()
  return {'skip', state}
end

local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]

-- A job that is already 'running' was held by a worker presumed dead and is
-- started again: that is a new attempt.
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[3], 'started_us', now)
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local v = redis.call('HMGET', KEYS[1], 'spec', 'image', 'submitted_us')
if not v[1] or not v[2] or not v[3] then
  return redis.error_reply('CORRUPT job record ' .. KEYS[1] .. ' lacks spec, image or submitted_us')
end
return {'run', v[1], v[2], v[3], now, attempts}
