-- A worker takes one or more jobs it read from the stream: marks each
-- running and hands back what the worker needs to judge it, in one step. A
-- worker starts together the jobs of a read that it starts at the same
-- moment (runner/group_commit.rs). The images are not among what it hands
-- back: Redis's Lua hashes every byte of a string it is handed, so the
-- caller (start.rs) reads each with an HGET in the same MULTI/EXEC, after
-- this script.
--
-- KEYS[1] jobs stream   KEYS[2] stats hash
-- KEYS[3..] the record of each job, in the order of the entries below
-- ARGV[1] consumer group   ARGV[2] worker name
-- ARGV[3] most starts allowed (0: no limit)
-- ARGV[4..] the stream entry id of each job
--
-- Returns one reply a job, in order:
--   {'run', spec, submitted_us, started_us, attempts}
--   {'skip', state}   the job already ended (cancelled, or finished by another
--                     worker after a reclaim): its entry is acknowledged and
--                     deleted, and the worker moves on
--   {'missing'}       no record (expired or deleted): the entry is dropped
--   {'exhausted', attempts}   the job was started as often as allowed and
--                     never finished (it keeps killing workers, or keeps
--                     failing transiently): nothing is changed; the worker
--                     dead-letters it (dead_letter.lua)
--   {'corrupt', what} the record lacks what every record holds (never
--                     caused by user input): nothing is changed

if #ARGV - 3 ~= #KEYS - 2 then
  return redis.error_reply('ERR start: ' .. (#ARGV - 3) .. ' entries for ' .. (#KEYS - 2) .. ' records')
end

local limit = tonumber(ARGV[3]) or 0
local t = redis.call('TIME')
local now = t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
local replies, dropped, reruns = {}, {}, 0

for j = 1, #ARGV - 3 do
  local record, entry = KEYS[2 + j], ARGV[3 + j]
  local v = redis.call('HMGET', record, 'state', 'attempts', 'spec', 'submitted_us')
  local before = tonumber(v[2]) or 0
  local refused = refusal(v[1], 'skip')
  if refused then
    dropped[#dropped + 1] = entry
    replies[j] = refused
  elseif limit > 0 and before >= limit then
    replies[j] = {'exhausted', before}
  elseif not v[3] or not v[4] or redis.call('HEXISTS', record, 'image') == 0 then
    replies[j] = {'corrupt', 'job record ' .. record .. ' lacks spec, image or submitted_us'}
  else
    -- A job that was started before (its worker died, hung, lost Redis, or
    -- failed transiently) is started again: that is a new attempt, and a
    -- rerun.
    local attempts = before + 1
    redis.call('HSET', record, 'state', 'running', 'worker', ARGV[2], 'started_us', now,
      'attempts', attempts)
    if attempts > 1 then
      reruns = reruns + 1
    end
    replies[j] = {'run', v[3], v[4], now, attempts}
  end
end

if #dropped > 0 then
  drop_entries(KEYS[1], ARGV[1], unpack(dropped))
end
if reruns > 0 then
  redis.call('HINCRBY', KEYS[2], 'reruns', reruns)
end
return replies
