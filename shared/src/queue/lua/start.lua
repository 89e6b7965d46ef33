-- A worker takes a job it read from the stream: marks it running and hands
-- back what the worker needs to judge it, in one step. The image is not
-- among it: Redis's Lua hashes every byte of a string it is handed, so the
-- caller (start.rs) reads it with an HGET in the same MULTI/EXEC, after this
-- script.
--
-- KEYS[1] job record   KEYS[2] jobs stream   KEYS[3] stats hash
-- ARGV[1] consumer group   ARGV[2] stream entry id   ARGV[3] worker name
-- ARGV[4] most starts allowed (0: no limit)
--
-- Returns one of:
--   {'run', spec, submitted_us, started_us, attempts}
--   {'skip', state}   the job already ended (cancelled, or finished by another
--                     worker after a reclaim): its entry is acknowledged and
--                     deleted, and the worker moves on
--   {'missing'}       no record (expired or deleted): the entry is dropped
--   {'exhausted', attempts}   the job was started as often as allowed and
--                     never finished (it keeps killing workers, or keeps
--                     failing transiently): nothing is changed; the worker
--                     dead-letters it (dead_letter.lua)

local refused = refuse_gone_or_ended('skip')
if refused then
  return refused
end

local before = tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 0
local limit = tonumber(ARGV[4]) or 0
if limit > 0 and before >= limit then
  return {'exhausted', before}
end

local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]

-- A job that was started before (its worker died, hung, lost Redis, or failed
-- transiently) is started again: that is a new attempt, and a rerun.
redis.call('HSET', KEYS[1], 'state', 'running', 'worker', ARGV[3], 'started_us', now)
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if attempts > 1 then
  redis.call('HINCRBY', KEYS[3], 'reruns', 1)
end
local v = redis.call('HMGET', KEYS[1], 'spec', 'submitted_us')
if not v[1] or not v[2] or redis.call('HEXISTS', KEYS[1], 'image') == 0 then
  return redis.error_reply('CORRUPT job record ' .. KEYS[1] .. ' lacks spec, image or submitted_us')
end
return {'run', v[1], v[2], now, attempts}
