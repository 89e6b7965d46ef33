-- A worker process claims its name before it reads any job: the name is its
-- consumer in the group, so two live processes under one name would share
-- (and run twice) each other's pending jobs. Check and claim in one script.
--
-- (KEYS and ARGV[1..2] as in worker_owner.lua)
-- ARGV[3] the record (JSON, with this instance)   ARGV[4] the record's TTL in ms
-- ARGV[5] the TTL left at or below which a record counts as abandoned: its
--         holder has not rewritten it for STALE_AFTER (the TTL less STALE_AFTER)
-- ARGV[6] the instance of this name's previous process, known to be dead (its
--         supervisor reaped it), or '': its record is taken over at once
--
-- Returns {'registered'}: the name was free (or already this instance's);
-- {'took_over', previous, why}: the holder was the dead predecessor (why =
-- 'predecessor'), or had not beaten for STALE_AFTER (why = 'silent': a
-- process that died, or hangs): the name is this instance's now;
-- {'held', current, ttl_left_ms}: another process holds it
-- and beat within STALE_AFTER; nothing was written. Whether that holder is
-- alive the caller tells by calling again: a live one rewrites its record
-- every beat.

local current, mine, holder = current_record()
local predecessor = ARGV[6] ~= '' and holder == ARGV[6]
if current and not mine and not predecessor then
  local left = redis.call('PTTL', KEYS[1])
  if left > tonumber(ARGV[5]) then
    return {'held', current, left}
  end
end
write_record(ARGV[3], ARGV[4])
if current and not mine then
  if predecessor then
    return {'took_over', current, 'predecessor'}
  end
  return {'took_over', current, 'silent'}
end
return {'registered'}
