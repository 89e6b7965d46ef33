//! What verdict's binaries share: the job model, the Redis queue protocol, limits,
//! Redis URLs, shutdown, telemetry, what counts as a sentence to judge
//! (`text_content`) and handing freed memory back (`heap`).

pub mod clock;
pub mod heap;
pub mod job;
pub mod limits;
pub mod queue;
pub mod redis_pool;
pub mod redis_url;
pub mod shutdown;
pub mod telemetry;
pub mod text_content;
pub mod verdict;
