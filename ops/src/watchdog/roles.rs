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

/// `verdict-api --redis URL --bind ADDR:PORT --log-format json
/// --max-queue-depth N`, with the api token (if any) in its environment.
pub fn api(config: &FleetConfig, home: &Home) -> Launch {
    let mut args: Vec<OsString> = vec![
        "--redis".into(),
        config.redis_url().into(),
        "--bind".into(),
        config.bind.clone().into(),
        "--log-format".into(),
        "json".into(),
    ];
    args.extend(config.jobs.api_args());
    let mut launch = base(home, "api", &config.api_program, args);
    if let Some(token) = &config.api_token {
        launch
            .env
            .push((crate::api_token::ENV.into(), token.expose().into()));
    }
    launch
}

/// `verdict-worker run --redis URL --name NAME (--model DIR | --noop) --log-format json`,
/// with the per-worker memory limit.
pub fn worker(config: &FleetConfig, home: &Home, name: &str) -> Launch {
    let mut args: Vec<OsString> = vec![
        "run".into(),
        "--redis".into(),
        config.redis_url().into(),
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
    args.extend(config.worker_args.iter().map(OsString::from));
    let mut launch = base(home, name, &config.worker_program, args);
    launch.memory_limit = config.worker_memory;
    launch
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
        assert!(args.contains(&"--noop".to_string()));
        assert_eq!(launch.memory_limit, Some(1 << 30));
        assert_eq!(launch.pid_file, Path::new("/h/run/worker-3.pid"));
        assert_eq!(launch.log_file, Path::new("/h/logs/worker-3.log"));
        assert!(redis(&config, &home).is_none());
    }
}
