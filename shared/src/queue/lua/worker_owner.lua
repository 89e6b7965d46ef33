-- Prepended to register.lua, beat.lua and deregister.lua
-- (shared/src/queue/worker_name_script.rs): the three scripts that write a
-- worker's record. They share these keys and arguments:
--
-- KEYS[1] the worker's record (verdict:worker:{name})   KEYS[2] the set of workers
-- ARGV[1] the worker's name   ARGV[2] the instance token of the process calling

-- The record now under the name, whether it is the calling process's own
-- (its JSON names this instance), and the instance it names. A record that
-- does not decode is nobody's: never the caller's.
local function current_record()
  local current = redis.call('GET', KEYS[1])
  if not current then
    return nil, false, nil
  end
  local ok, record = pcall(cjson.decode, current)
  local instance = nil
  if ok and type(record) == 'table' and type(record['instance']) == 'string' then
    instance = record['instance']
  end
  return current, instance == ARGV[2], instance
end

-- Writes the record with its TTL and puts the name in the set of workers.
local function write_record(json, ttl_ms)
  redis.call('SET', KEYS[1], json, 'PX', ttl_ms)
  redis.call('SADD', KEYS[2], ARGV[1])
end

