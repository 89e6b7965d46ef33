-- The api samples the queue into this minute's activity hash (issue 17's
-- dashboard; docs/protocol.md, verdict:minute:*): jobs waiting for a worker
-- and jobs a worker holds, the last sample and the largest of the minute.
--
-- KEYS[1] jobs stream
-- ARGV[1] consumer group   ARGV[2] minute activity key prefix   ARGV[3] its TTL (s)
--
-- Returns {'sampled', queued, in_flight}.

local t = redis.call('TIME')
local minute = ARGV[2] .. math.floor(tonumber(t[1]) / 60)

local depth = redis.call('XLEN', KEYS[1])
local in_flight = 0
local pending = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(pending) == 'table' and not pending.err then
  in_flight = tonumber(pending[1]) or 0
end
local queued = math.max(depth - in_flight, 0)

redis.call('HSET', minute, 'queued', queued, 'in_flight', in_flight)
for field, value in pairs({['queued:max'] = queued, ['in_flight:max'] = in_flight}) do
  local max = tonumber(redis.call('HGET', minute, field))
  if max == nil or value > max then
    redis.call('HSET', minute, field, value)
  end
end
redis.call('EXPIRE', minute, ARGV[3])
return {'sampled', queued, in_flight}
