-- A worker says what it fetched for a job that names its image (a URL or a
-- path under the image root) instead of carrying it: the size, sha256 and
-- format of the bytes it judges, so that the job shows what was judged even
-- if the URL or the file changes later. Written only while the job is
-- running in this worker's hands: a worker that lost the job (reclaimed,
-- cancelled, ended) writes nothing.
--
-- KEYS[1] job record
-- ARGV[1] worker name   ARGV[2] JSON {bytes, sha256, format}
--
-- Returns {'recorded'} or {'not_running'}.

local v = redis.call('HMGET', KEYS[1], 'state', 'worker')
if v[1] ~= 'running' or v[2] ~= ARGV[1] then
  return {'not_running'}
end
redis.call('HSET', KEYS[1], 'image_fetched', ARGV[2])
return {'recorded'}
