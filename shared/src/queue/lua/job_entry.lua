-- Prepended to start.lua, finish.lua and dead_letter.lua
-- (shared/src/queue/job_script.rs): the three scripts a worker runs on a job
-- it read from the jobs stream. They share these keys and arguments:
--
-- KEYS[1] job record   KEYS[2] jobs stream   ARGV[1] consumer group   ARGV[2] stream entry id

-- Acknowledges and deletes the job's stream entry.
local function drop_entry()
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end

-- A job whose record is gone, or that already ended, is not worked on: its
-- entry is dropped and the reply says so ({'missing'}, or {ended_verb, state}).
-- Returns nil for a job still queued or running.
local function refuse_gone_or_ended(ended_verb)
  local state = redis.call('HGET', KEYS[1], 'state')
  if not state then
    drop_entry()
    return {'missing'}
  end
  if state == 'done' or state == 'failed' or state == 'cancelled' then
    drop_entry()
    return {ended_verb, state}
  end
  return nil
end

