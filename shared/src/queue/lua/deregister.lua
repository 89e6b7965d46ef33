-- A worker leaving: deletes its record and takes its name out of the set,
-- unless the name is another process's now (then both are left alone).
--
-- (KEYS and ARGV[1..2] as in worker_owner.lua)
--
-- Returns {'deregistered'} or {'not_ours', current}.

local current, mine = current_record()
if current and not mine then
  return {'not_ours', current}
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return {'deregistered'}
