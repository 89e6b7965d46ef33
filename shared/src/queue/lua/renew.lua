-- A live worker says "still mine" for the stream entries it holds: resets
-- their idle time (XCLAIM to itself, JUSTID: the delivery count is not
-- raised), so that no other worker reclaims a job that is merely slow. An
-- entry that is no longer pending for this worker (finished, or reclaimed by
-- another while this one was silent) is left alone: a worker never takes a
-- job back from the one that reclaimed it.
--
-- KEYS[1] jobs stream
-- ARGV[1] consumer group   ARGV[2] worker (consumer) name   ARGV[3..] entry ids
--
-- Returns how many entries were renewed.

local renewed = 0
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #pending == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    renewed = renewed + 1
  end
end
return renewed
