-- Takes a job out of the dead-letter stream, at an operator's request: back
-- into the queue (retry) or only out of the stream (discard, the record
-- stays failed until its TTL).
--
-- A retried job starts afresh: attempts 0, no error, no worker, its record
-- kept (PERSIST) until it ends again, a new stream entry. Its image is the
-- one dead_letter.lua kept; once the record's TTL removed it, there is
-- nothing to judge and the job cannot be retried.
--
-- KEYS[1] job record   KEYS[2] jobs stream   KEYS[3] stats hash   KEYS[4] dead-letter stream
-- ARGV[1] job id   ARGV[2] 'retry' or 'discard'
--
-- Returns {'queued', new stream entry id}, {'discarded'}, {'not_dead', state}
-- (the job is not in the dead-letter stream) or {'missing'} (no record, or no
-- image left to judge).

local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  return {'missing'}
end
local dead = redis.call('HGET', KEYS[1], 'dead_entry')
if not dead then
  return {'not_dead', state}
end

if ARGV[2] == 'discard' then
  redis.call('XDEL', KEYS[4], dead)
  redis.call('HDEL', KEYS[1], 'dead_entry')
  return {'discarded'}
end

if redis.call('HEXISTS', KEYS[1], 'image') == 0 then
  return {'missing'}
end
redis.call('HDEL', KEYS[1], 'error', 'last_error', 'worker', 'started_us', 'finished_us',
  'results', 'dead_entry')
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempts', 0)
redis.call('PERSIST', KEYS[1])
local entry = redis.call('XADD', KEYS[2], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[1], 'entry', entry)
redis.call('XDEL', KEYS[4], dead)
redis.call('HINCRBY', KEYS[3], 'dead_retried', 1)
return {'queued', entry}
