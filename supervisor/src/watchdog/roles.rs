//! The command line of each role: what the watchdog runs for redis, the api
//! and a worker.
//!
//! The api and the workers log JSON (`--log-format json`): one object per line
//! with a level field, which `fleet logs` filters and renders for people.

use std::ffi::OsString;

use crate::config::{FleetConfig, ModelPlan, RedisPlan};
use crate::embedded_redis;
use crate::home::Home;

use super::child::Launch;

/// Where the api and the workers read the Redis URL (their `--redis` flag's
/// environment variable): it may hold a password.
pub const REDIS_URL_ENV: &str = "VERDICT_REDIS_URL";

/// Where a worker reads the instance token of the dead process that held
/// its name before it (`verdict-worker run --predecessor`): it takes that
/// record over at once.
pub const WORKER_PREDECESSOR_ENV: &str = "VERDICT_WORKER_PREDECESSOR";

/// The api's callback signing secret.
pub const CALLBACK_SECRET_ENV: &str = "VERDICT_CALLBACK_SECRET";

/// Variables that hold secrets: no child inherits them from the watchdog;
/// each gets only those its role sets ([`api`], [`worker`]).
pub const SECRET_ENV: [&str; 3] = [REDIS_URL_ENV, CALLBACK_SECRET_ENV, crate::api_token::ENV];

fn base(home: &Home, name: &str, program: &std::path::Path, args: Vec<OsString>) -> Launch {
    Launch {
        program: program.to_path_buf(),
        args,
        env: Vec::new(),
        cwd: home.root().to_path_buf(),
        pid_file: home.pid_file(name),
        log_file: home.log_file(name),
        memory_limit: None,
    }
}

/// The embedded `redis-server`, or `None` with an external Redis.
pub fn redis(config: &FleetConfig, home: &Home) -> Option<Launch> {
    match &config.redis {
        RedisPlan::Embedded {
            program,
            socket,
            data_dir,
            appendfsync,
        } => Some(base(
            home,
            "redis",
            program,
            embedded_redis::args(socket, data_dir, *appendfsync),
        )),
        RedisPlan::External { .. } => None,
    }
}

/// `verdict-api --bind ADDR:PORT --log-format json --max-queue-depth N
/// [--examples DIR] [--image-hosts H,... --image-root DIR]`, with the Redis URL, the api token and the callback secret (those it has)
/// in its environment: never on a command line, which every local user can
/// read.
pub fn api(config: &FleetConfig, home: &Home) -> Launch {
    let mut args: Vec<OsString> = vec![
        "--bind".into(),
        config.bind.clone().into(),
        "--log-format".into(),
        "json".into(),
    ];
    args.extend(config.jobs.api_args());
    if let Some(dir) = &config.examples {
        args.push("--examples".into());
        args.push(dir.clone().into());
    }
    args.extend(config.images.args());
    let mut launch = base(home, "api", &config.api_program, args);
    redis_env(config, &mut launch);
    // Only the api sends callbacks: the secret the watchdog was started
    // with goes to it and to no other child (child.rs removes it from what
    // children inherit).
    if let Ok(secret) = std::env::var(CALLBACK_SECRET_ENV) {
        launch.env.push((CALLBACK_SECRET_ENV.into(), secret));
    }
    if let Some(token) = &config.api_token {
        launch
            .env
            .push((crate::api_token::ENV.into(), token.expose().into()));
    }
    launch
}

/// `verdict-worker run --name NAME (--model DIR | --noop) --log-format json
/// [--image-hosts H,... --image-root DIR]`,
/// with the Redis URL in its environment and the per-worker memory limit.
pub fn worker(config: &FleetConfig, home: &Home, name: &str) -> Launch {
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "--name".into(),
        config.registered_name(name).into(),
        "--log-format".into(),
        "json".into(),
    ];
    match &config.model {
        ModelPlan::Pack { dir, .. } => {
            args.push("--model".into());
            args.push(dir.clone().into());
        }
        ModelPlan::Noop => args.push("--noop".into()),
    }
    args.extend(config.jobs.worker_args());
    args.extend(config.images.args());
    if config.worker_threads > 1 {
        args.push("--threads".into());
        args.push(config.worker_threads.to_string().into());
    }
    args.extend(config.worker_args.iter().map(OsString::from));
    let mut launch = base(home, name, &config.worker_program, args);
    redis_env(config, &mut launch);
    launch.memory_limit = config.worker_memory;
    launch
}

/// Where Redis is, in the environment (never on the command line: the URL
/// may hold a password): the URL and any TLS files (`--redis-ca` ...).
fn redis_env(config: &FleetConfig, launch: &mut Launch) {
    launch.env.push((REDIS_URL_ENV.into(), config.redis_url()));
    for (name, path) in config.redis_tls().env() {
        launch
            .env
            .push((name.into(), path.to_string_lossy().into_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn workers_get_their_name_model_and_limit() {
        let home = Home::resolve(Some(Path::new("/h"))).unwrap();
        let mut config = crate::config::sample(home.root());
        config.worker_memory = Some(1 << 30);
        config.worker_name_prefix = "hostA-".into();
        let launch = worker(&config, &home, "worker-3");
        let args: Vec<String> = launch
            .args
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert_eq!(args[0], "run");
        assert!(args.windows(2).any(|w| w == ["--name", "hostA-worker-3"]));
        assert!(
            !args.iter().any(|a| a == "--threads"),
            "one thread is the worker's default"
        );
        assert!(
            !args.iter().any(|a| a.contains("redis")),
            "the Redis URL stays off the command line: {args:?}"
        );
        assert!(
            launch
                .env
                .iter()
                .any(|(k, v)| k == REDIS_URL_ENV && *v == config.redis_url())
        );
        assert!(args.contains(&"--noop".to_string()));
        assert_eq!(launch.memory_limit, Some(1 << 30));
        assert_eq!(launch.pid_file, Path::new("/h/run/worker-3.pid"));
        assert_eq!(launch.log_file, Path::new("/h/logs/worker-3.log"));
        assert!(redis(&config, &home).is_none());

        config.worker_threads = 2;
        let args: Vec<String> = worker(&config, &home, "worker-3")
            .args
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert!(args.windows(2).any(|w| w == ["--threads", "2"]));
    }

    #[test]
    fn the_api_gets_the_examples_directory_when_there_is_one() {
        let home = Home::resolve(Some(Path::new("/h"))).unwrap();
        let mut config = crate::config::sample(home.root());
        let args = |config: &FleetConfig| -> Vec<String> {
            api(config, &home)
                .args
                .iter()
                .map(|a| a.to_string_lossy().into())
                .collect()
        };
        assert!(!args(&config).iter().any(|a| a == "--examples"));
        config.examples = Some("/repo/.cache/photos".into());
        assert!(
            args(&config)
                .windows(2)
                .any(|w| w == ["--examples", "/repo/.cache/photos"])
        );
    }

    #[test]
    fn the_api_and_every_worker_get_the_same_image_sources() {
        let home = Home::resolve(Some(Path::new("/h"))).unwrap();
        let mut config = crate::config::sample(home.root());
        let strings = |launch: Launch| -> Vec<String> {
            launch
                .args
                .iter()
                .map(|a| a.to_string_lossy().into())
                .collect()
        };
        assert!(
            !strings(api(&config, &home))
                .iter()
                .any(|a| a.starts_with("--image"))
        );
        config.images.image_hosts = vec!["img.example.com".into(), "http://10.0.0.7:9000".into()];
        config.images.image_root = Some("/mnt/catalogue".into());
        for args in [
            strings(api(&config, &home)),
            strings(worker(&config, &home, "worker-0")),
        ] {
            assert!(
                args.windows(2)
                    .any(|w| w == ["--image-hosts", "img.example.com,http://10.0.0.7:9000"]),
                "{args:?}"
            );
            assert!(
                args.windows(2)
                    .any(|w| w == ["--image-root", "/mnt/catalogue"]),
                "{args:?}"
            );
        }
    }
}
