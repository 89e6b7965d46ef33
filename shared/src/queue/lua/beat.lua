-- A worker's heartbeat: rewrites its record (fresh TTL) while the name is
-- still this process's. A record that expired (Redis unreachable for longer
-- than the TTL, or a Redis that lost its data) is written again: nobody
-- holds the name. A record of another instance means the name was taken
-- over (this process did not beat for STALE_AFTER, and another registered
-- it): nothing is written, and the worker stops.
--
-- (KEYS and ARGV[1..2] as in worker_owner.lua)
-- ARGV[3] the record (JSON, with this instance)   ARGV[4] the record's TTL in ms
--
-- Returns {'beat'} or {'taken', current}.

local current, mine = current_record()
if current and not mine then
  return {'taken', current}
end
write_record(ARGV[3], ARGV[4])
return {'beat'}
