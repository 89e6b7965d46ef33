-- A worker gives a job back after a transient failure: records the error,
-- puts the job back to 'queued' and counts the retry. The stream entry stays
-- pending in the worker's hands: the worker waits out its backoff and starts
-- the job again (start.lua counts the attempt and enforces the limit); if it
-- dies meanwhile, the entry is run again by its next process or reclaimed.
-- While queued the job can be cancelled.
--
-- KEYS[1] job record   KEYS[2] stats hash
-- ARGV[1] worker name   ARGV[2] error JSON {code, message}
--
-- Returns {'retry', attempts}, or {'lost', state}: the job is no longer
-- running in this worker's hands (it ended, or another worker took it over),
-- and nothing was changed.

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'lost', ''}
end
if state ~= 'running' or redis.call('HGET', KEYS[1], 'worker') ~= ARGV[1] then
  return {'lost', state}
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'last_error', ARGV[2])
redis.call('HINCRBY', KEYS[2], 'retries', 1)
return {'retry', tonumber(redis.call('HGET', KEYS[1], 'attempts')) or 0}
