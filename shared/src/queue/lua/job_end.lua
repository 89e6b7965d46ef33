-- Prepended to finish.lua, dead_letter.lua and cancel.lua
-- (shared/src/queue/job_script.rs): the three ways a job ends. They number
-- their keys and arguments differently, so each helper takes what it needs.

-- Redis's clock in microseconds since the epoch, the unit of the record's
-- *_us fields (one clock for every process, whatever its host's).
local function redis_now_us()
  local t = redis.call('TIME')
  return t[1] .. string.rep('0', 6 - #t[2]) .. t[2]
end

-- Starts an ended job's result TTL: `result_ttl`, the record's field of that
-- name (the TTL it was submitted with; nil: read it here), else the default.
local function expire_ended(record, default_ttl, result_ttl)
  if result_ttl == nil then
    result_ttl = redis.call('HGET', record, 'result_ttl')
  end
  redis.call('EXPIRE', record, tonumber(result_ttl) or tonumber(default_ttl))
end

-- Tells the world a job ended. A job submitted with a callback_url gets
-- exactly one entry in the callbacks stream (issue 7), here where it ends:
-- once, because each ending script refuses a job that already ended before
-- it gets here. The api processes send it (docs/protocol.md). Then the job id
-- goes out on the events channel, which wakes long-polls. `spec_json` is the
-- record's `spec` field (nil: read it here).
local function announce_end(record, callbacks, events, job_id, spec_json)
  if spec_json == nil then
    spec_json = redis.call('HGET', record, 'spec')
  end
  spec_json = spec_json or ''
  -- Decoding a spec costs more than the rest of a job's ending: it is
  -- decoded only when its text could name a callback (the key as written,
  -- or any \u escape, which could spell it).
  if string.find(spec_json, 'callback_url', 1, true) or string.find(spec_json, '\\u', 1, true) then
    local ok, spec = pcall(cjson.decode, spec_json)
    if ok and type(spec) == 'table' and type(spec.callback_url) == 'string' then
      redis.call('XADD', callbacks, '*', 'job', job_id)
    end
  end
  redis.call('PUBLISH', events, job_id)
end


-- The fleet's activity, minute by minute, for the dashboard (issue 17): the
-- hash `<prefix><unix minute>` (docs/protocol.md, verdict:minute:*) holds the
-- same fields as the metrics hash, for that minute only, plus jobs:done and
-- jobs:failed, and lives its TTL from its last write: the caller sets it
-- (EXPIRE) after writing, since EXPIRE on a key not yet made does nothing.
-- Returns the minute's key.
local function minute_key(prefix, now_us)
  return prefix .. math.floor(tonumber(now_us) / 60000000)
end

-- The ended job joins the list of recent failures (newest first, `keep`
-- long): its id, error code and message (cut to 300 characters), the worker,
-- when (milliseconds since the epoch) and whether it was dead-lettered.
local function remember_failure(list, keep, job_id, error_json, worker, now_us, dead_lettered)
  local code, message = 'unknown', ''
  local ok, decoded = pcall(cjson.decode, error_json)
  if ok and type(decoded) == 'table' then
    code = tostring(decoded.code or code)
    message = string.sub(tostring(decoded.message or ''), 1, 300)
  end
  redis.call('LPUSH', list, cjson.encode({
    job = job_id,
    code = code,
    message = message,
    worker = worker,
    at_ms = math.floor(tonumber(now_us) / 1000),
    dead_lettered = dead_lettered,
  }))
  redis.call('LTRIM', list, 0, tonumber(keep) - 1)
end
