//! The name resolver of the HTTP clients that fetch images and send callbacks:
//! the system's resolver, keeping only public addresses
//! ([`crate::public_address`]).
//!
//! The check is made on the addresses the connection will use, not on an
//! earlier lookup, so a name that resolves to a public address when the api
//! checks it and to `127.0.0.1` a moment later (DNS rebinding) is still
//! refused. A name with no public address fails with [`ForbiddenAddress`],
//! which [`forbidden_address`] finds in a request's error.

use std::error::Error;
use std::net::SocketAddr;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::public_address;

/// Resolves names to their public addresses only.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicResolver;

/// A name that resolves to no public address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name} resolves only to addresses the fleet may not reach ({why}); list the address itself to allow it"
)]
pub struct ForbiddenAddress {
    pub name: String,
    /// Why its first address is refused ("loopback (127.0.0.0/8)").
    pub why: String,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|addr| public_address::refusal(addr.ip()).is_none());
            if public.is_empty() {
                let why = refused
                    .first()
                    .and_then(|addr| public_address::refusal(addr.ip()))
                    .unwrap_or("no address at all")
                    .to_owned();
                return Err(
                    Box::new(ForbiddenAddress { name, why }) as Box<dyn Error + Send + Sync>
                );
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The [`ForbiddenAddress`] somewhere in `err`'s chain of sources.
pub fn forbidden_address<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a ForbiddenAddress> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<ForbiddenAddress>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_of_the_loopback_is_refused_with_its_reason() {
        let client = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(PublicResolver))
            .no_proxy()
            .build()
            .unwrap();
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        let found = forbidden_address(&err).expect("a ForbiddenAddress in the chain");
        assert_eq!(found.name, "localhost");
        assert!(found.why.starts_with("loopback"), "{found}");
    }
}
