-- A worker finishes one or more jobs: for each, stores the verdicts (or the
-- error), sets the state, drops the image, starts the result TTL and
-- announces it; acknowledges and deletes their stream entries; counts them
-- and adds their metrics; all in one step, so that no reader ever sees half
-- a finished job, and a job's figures are counted exactly when its ending is
-- stored.
--
-- A worker finishes together the jobs that ended while its previous finish
-- was in flight (runner/finisher.rs): the counters and metrics of the whole
-- call are added up here and written once, not once a job.
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
-- ARGV[8..] the jobs, each as: stream entry id, job id, 'done' or 'failed',
--           results JSON (done) or error JSON (failed), the number n of its
--           metrics, then n threes: 'count' or 'seconds', field, amount
--           (added only when this call finishes the job, to the metrics hash
--           and to this minute's activity)
--
-- Returns one reply a job, in order: {'finished', finished_us},
-- {'stale', state} or {'missing'}.

-- Every argument is checked before anything is written: a script that fails
-- halfway would leave its first writes in place.
local jobs = {}
local i = 8
while i <= #ARGV do
  local outcome, n = ARGV[i + 2], tonumber(ARGV[i + 4])
  if outcome ~= 'done' and outcome ~= 'failed' then
    return redis.error_reply('ERR finish: outcome must be done or failed, not ' .. tostring(outcome))
  end
  if not n or n < 0 or i + 4 + 3 * n > #ARGV then
    return redis.error_reply('ERR finish: job ' .. (#jobs + 1) .. ' has a bad metrics count')
  end
  local metrics = {}
  for m = i + 5, i + 4 + 3 * n, 3 do
    local kind, field, amount = ARGV[m], ARGV[m + 1], tonumber(ARGV[m + 2])
    -- A finite number (NaN is the one number not equal to itself), and a
    -- whole one for a count.
    if not amount or amount ~= amount or amount == math.huge or amount == -math.huge
      or (kind == 'count' and math.floor(amount) ~= amount)
      or (kind ~= 'count' and kind ~= 'seconds') then
      return redis.error_reply('ERR finish: metric ' .. field .. ' is not a ' .. kind .. ': ' .. ARGV[m + 2])
    end
    metrics[#metrics + 1] = {kind = kind, field = field, amount = amount}
  end
  jobs[#jobs + 1] = {entry = ARGV[i], id = ARGV[i + 1], outcome = outcome,
    payload = ARGV[i + 3], metrics = metrics}
  i = i + 5 + 3 * n
end
if #jobs ~= #KEYS - 5 then
  return redis.error_reply('ERR finish: ' .. #jobs .. ' jobs for ' .. (#KEYS - 5) .. ' records')
end

if #jobs == 0 then
  return {}
end

local now = redis_now_us()
local replies, entries = {}, {}
-- What the call adds up: counters in `ended` (stats), metrics by field.
local ended = {done = 0, failed = 0, late_finishes = 0}
local counts, seconds, fields = {}, {}, {}

for j, job in ipairs(jobs) do
  local record = KEYS[5 + j]
  entries[#entries + 1] = job.entry
  local v = redis.call('HMGET', record, 'state', 'result_ttl', 'spec')
  local refused = refusal(v[1], 'stale')
  if refused then
    if refused[1] == 'stale' then
      ended.late_finishes = ended.late_finishes + 1
    end
    replies[j] = refused
  else
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
    for _, metric in ipairs(job.metrics) do
      local sums = counts
      if metric.kind == 'seconds' then
        sums = seconds
      end
      if counts[metric.field] == nil and seconds[metric.field] == nil then
        fields[#fields + 1] = metric.field
      end
      sums[metric.field] = (sums[metric.field] or 0) + metric.amount
    end
    if job.outcome == 'failed' then
      remember_failure(KEYS[5], ARGV[7], job.id, job.payload, ARGV[2], now, false)
    end
    announce_end(record, KEYS[3], ARGV[3], job.id, v[3])
    replies[j] = {'finished', now}
  end
end

drop_entries(KEYS[1], ARGV[1], unpack(entries))
for _, counter in ipairs({'done', 'failed', 'late_finishes'}) do
  if ended[counter] > 0 then
    redis.call('HINCRBY', KEYS[2], counter, ended[counter])
  end
end
if ended.done + ended.failed > 0 then
  local minute = minute_key(ARGV[5], now)
  for _, outcome in ipairs({'done', 'failed'}) do
    if ended[outcome] > 0 then
      redis.call('HINCRBY', minute, 'jobs:' .. outcome, ended[outcome])
    end
  end
  for _, field in ipairs(fields) do
    for _, hash in ipairs({KEYS[4], minute}) do
      if seconds[field] ~= nil then
        redis.call('HINCRBYFLOAT', hash, field, string.format('%.17g', seconds[field]))
      end
      if counts[field] ~= nil then
        redis.call('HINCRBY', hash, field, string.format('%d', counts[field]))
      end
    end
  end
  redis.call('EXPIRE', minute, ARGV[6])
end
return replies
