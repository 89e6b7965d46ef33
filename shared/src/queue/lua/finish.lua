-- A worker finishes one or more jobs: for each, stores the verdicts (or the
-- error), sets the state, drops the image, starts the result TTL and
-- announces it; acknowledges and deletes their stream entries; counts them
-- and adds their metrics; all in one step, so that no reader ever sees half
-- a finished job, and a job's figures are counted exactly when its ending is
-- stored.
--
-- A worker finishes together the jobs that ended while its previous finish
-- was in flight (runner/group_commit.rs). It sends the metrics of the call's
-- jobs already added up, once (one HINCRBY a field, not one a job), so the
-- call finishes all its jobs or none of them: a call in which a job is
-- refused finishes nothing else, and the worker sends the others again, with
-- their own sum (finish.rs).
--
-- A job that already ended is never touched again: a late result (from a
-- worker presumed dead whose job was claimed and finished by another) is
-- refused and counted, and the job keeps its first ending.
--
-- KEYS[1] jobs stream   KEYS[2] stats hash   KEYS[3] callbacks stream
-- KEYS[4] metrics hash   KEYS[5] recent failures list
-- KEYS[6..] the record of each job, in the order of the jobs below
-- ARGV[1] consumer group   ARGV[2] worker name   ARGV[3] events channel
-- ARGV[4] default result TTL (s)   ARGV[5] minute activity key prefix
-- ARGV[6] its TTL (s)   ARGV[7] recent failures kept
-- ARGV[8] the number n of metrics, then n threes: 'count' or 'seconds',
--         field, amount: the sum over the call's jobs, added to the metrics
--         hash and to this minute's activity when the call finishes them
-- ARGV[9 + 3n ..] the jobs, each as four: stream entry id, job id, 'done' or
--         'failed', results JSON (done) or error JSON (failed)
--
-- Returns one reply a job, in order: {'finished', finished_us},
-- {'stale', state}, {'missing'}, or {'again'}: the job was not finished
-- because another job of the call was refused (stale or missing); nothing of
-- it was written, and the worker sends it again without the refused ones.

-- Every argument is checked before anything is written: a script that fails
-- halfway would leave its first writes in place.
local n = tonumber(ARGV[8])
if not n or n < 0 or n ~= math.floor(n) or 8 + 3 * n > #ARGV then
  return redis.error_reply('ERR finish: a bad metrics count')
end
local metrics = {}
for m = 9, 8 + 3 * n, 3 do
  local kind, field, amount = ARGV[m], ARGV[m + 1], tonumber(ARGV[m + 2])
  -- A finite number (NaN is the one number not equal to itself), and a whole
  -- one for a count.
  if not amount or amount ~= amount or amount == math.huge or amount == -math.huge
    or (kind == 'count' and math.floor(amount) ~= amount)
    or (kind ~= 'count' and kind ~= 'seconds') then
    return redis.error_reply('ERR finish: metric ' .. field .. ' is not a ' .. kind .. ': ' .. ARGV[m + 2])
  end
  metrics[#metrics + 1] = {kind = kind, field = field, amount = amount}
end
if (#ARGV - 8 - 3 * n) % 4 ~= 0 then
  return redis.error_reply('ERR finish: each job takes four arguments')
end
local jobs = {}
for i = 9 + 3 * n, #ARGV, 4 do
  local outcome = ARGV[i + 2]
  if outcome ~= 'done' and outcome ~= 'failed' then
    return redis.error_reply('ERR finish: outcome must be done or failed, not ' .. tostring(outcome))
  end
  jobs[#jobs + 1] = {entry = ARGV[i], id = ARGV[i + 1], outcome = outcome, payload = ARGV[i + 3]}
end
if #jobs ~= #KEYS - 5 then
  return redis.error_reply('ERR finish: ' .. #jobs .. ' jobs for ' .. (#KEYS - 5) .. ' records')
end

if #jobs == 0 then
  return {}
end

local now = redis_now_us()
local replies, entries, records = {}, {}, {}
local late_finishes, refused_any = 0, false

-- First every job's state: one refused job and the call finishes no other.
for j, job in ipairs(jobs) do
  local record = KEYS[5 + j]
  local v = redis.call('HMGET', record, 'state', 'result_ttl', 'spec')
  local refused = refusal(v[1], 'stale')
  if refused then
    refused_any = true
    entries[#entries + 1] = job.entry
    if refused[1] == 'stale' then
      late_finishes = late_finishes + 1
    end
    replies[j] = refused
  else
    records[j] = v
  end
end

if refused_any then
  -- The refused jobs are over for this worker: their entries go, and the
  -- late finishes are counted. The others wait for the worker's next call.
  for j = 1, #jobs do
    if not replies[j] then
      replies[j] = {'again'}
    end
  end
  drop_entries(KEYS[1], ARGV[1], unpack(entries))
  if late_finishes > 0 then
    redis.call('HINCRBY', KEYS[2], 'late_finishes', late_finishes)
  end
  return replies
end

local ended = {done = 0, failed = 0}
for j, job in ipairs(jobs) do
  local record, v = KEYS[5 + j], records[j]
  entries[#entries + 1] = job.entry
  local payload_field = 'results'
  if job.outcome == 'failed' then
    payload_field = 'error'
  end
  redis.call('HSET', record,
    'state', job.outcome,
    payload_field, job.payload,
    'worker', ARGV[2],
    'finished_us', now)
  redis.call('HDEL', record, 'image')
  expire_ended(record, ARGV[4], v[2])
  ended[job.outcome] = ended[job.outcome] + 1
  if job.outcome == 'failed' then
    remember_failure(KEYS[5], ARGV[7], job.id, job.payload, ARGV[2], now, false)
  end
  announce_end(record, KEYS[3], ARGV[3], job.id, v[3])
  replies[j] = {'finished', now}
end

drop_entries(KEYS[1], ARGV[1], unpack(entries))
local minute = minute_key(ARGV[5], now)
for _, outcome in ipairs({'done', 'failed'}) do
  if ended[outcome] > 0 then
    redis.call('HINCRBY', KEYS[2], outcome, ended[outcome])
    redis.call('HINCRBY', minute, 'jobs:' .. outcome, ended[outcome])
  end
end
for _, metric in ipairs(metrics) do
  for _, hash in ipairs({KEYS[4], minute}) do
    if metric.kind == 'seconds' then
      redis.call('HINCRBYFLOAT', hash, metric.field, string.format('%.17g', metric.amount))
    else
      redis.call('HINCRBY', hash, metric.field, string.format('%d', metric.amount))
    end
  end
end
redis.call('EXPIRE', minute, ARGV[6])
return replies
