//! A script run in a MULTI/EXEC transaction beside plain commands.
//!
//! Redis's Lua hashes every byte of every string a script is handed or
//! returns, so a job's image goes in and out by plain HSET and HGET, run in
//! the same transaction as the script that needs it (submit.rs, start.rs).

/// Runs the commands `add` puts in a MULTI/EXEC transaction, among them an
/// EVALSHA of `script`, and returns EXEC's values (the ignored commands'
/// left out).
///
/// The script is not loaded on every call (a SCRIPT LOAD hashes its text
/// each time): when Redis does not know it (NOSCRIPT: a fresh or restarted
/// Redis), the transaction is run again with a SCRIPT LOAD at its head. The
/// commands beside the script must be safe to run twice (an HSET of the same
/// value, a read). Error replies stay values of the reply, with their codes
/// (redis-rs would otherwise fold them into a "pipeline failure" without
/// them): the caller takes them out.
pub(crate) async fn in_transaction<C: redis::aio::ConnectionLike>(
    conn: &mut C,
    script: &redis::Script,
    add: impl Fn(&mut redis::Pipeline),
) -> redis::RedisResult<redis::Value> {
    let mut load = false;
    loop {
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        if load {
            pipe.load_script(script).ignore();
        }
        add(&mut pipe);
        let values: redis::Value = pipe.query_async(conn).await?;
        let missing = matches!(&values, redis::Value::Array(items)
            if items.iter().any(|item| matches!(item,
                redis::Value::ServerError(err) if err.code() == "NOSCRIPT")));
        if missing && !load {
            load = true;
            continue;
        }
        return Ok(values);
    }
}
