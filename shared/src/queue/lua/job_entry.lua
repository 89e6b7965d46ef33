-- Prepended to start.lua, finish.lua and dead_letter.lua
-- (shared/src/queue/job_script.rs): the three scripts a worker runs on a job
-- it read from the jobs stream. Each names the job's record, the jobs
-- stream, the consumer group and the stream entry its own way (finish.lua
-- finishes several jobs at once), so the helpers take them as arguments.

-- Whether a job in `state` has ended: it is never worked on again.
local function has_ended(state)
  return state == 'done' or state == 'failed' or state == 'cancelled'
end

-- Why a job whose record holds `state` (nil: no record) is not worked on:
-- {'missing'}, or {ended_verb, state} for one that already ended; nil for a
-- job still queued or running.
local function refusal(state, ended_verb)
  if not state then
    return {'missing'}
  end
  if has_ended(state) then
    return {ended_verb, state}
  end
  return nil
end

-- Acknowledges and deletes stream entries (one id, or several).
local function drop_entries(stream, group, ...)
  redis.call('XACK', stream, group, ...)
  redis.call('XDEL', stream, ...)
end

-- A job whose record is gone, or that already ended, is not worked on: its
-- entry is dropped and the reply says why (see `refusal`). Returns nil for a
-- job still queued or running.
local function refuse_gone_or_ended(record, stream, group, entry, ended_verb)
  local refused = refusal(redis.call('HGET', record, 'state'), ended_verb)
  if refused then
    drop_entries(stream, group, entry)
  end
  return refused
end

