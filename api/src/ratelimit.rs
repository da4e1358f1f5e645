//! Per-client rate limits by role (design/api.md, "Limits and roles"): token buckets keyed
//! by the token's subject (signed in) or the client's address (anonymous; see `client` for
//! addresses behind trusted proxies), as a layer after
//! the auth layer on `/graphql` only — health, readiness and metrics are never limited.
//!
//! Each role has its own rate (requests per second per client; the burst equals the rate)
//! and its own keyed GCRA limiter (`governor`). A request costs one; a batch costs one per
//! operation (the handler charges the rest through [`Charge`] once it has counted them), and
//! on a WebSocket each subscription started costs one more, charged to the role and subject
//! of the socket's `connection_init` token (over the limit, that subscription gets an
//! `error` message with RATE_LIMITED; the socket stays open).
//! Over the limit: 429 with `Retry-After` (whole seconds, at least 1) and a RATE_LIMITED
//! error naming the limit. A request whose token the auth layer refuses is charged to its
//! address as anonymous first, so forged-token floods get 429s too.
//!
//! Memory stays bounded under a flood of distinct keys: at most once a second a request
//! sweeps every limiter (`retain_recent`), dropping clients whose bucket has refilled, which
//! for one request at 20/s takes 50 ms. IPv6 clients are keyed by their /64, which is what
//! one subscriber usually holds, so that rotating addresses inside it does not add buckets.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use schema::{Principal, Role};

use crate::client::ClientAddr;
use crate::metrics::Metrics;

/// Requests per second per client, by role; `None` = unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    per_second: [Option<NonZeroU32>; 5],
}

fn index(role: Role) -> usize {
    match role {
        Role::Anonymous => 0,
        Role::Citizen => 1,
        Role::Verifier => 2,
        Role::Registrar => 3,
        Role::Admin => 4,
    }
}

impl Default for RateLimits {
    /// anonymous 20/s, citizen 50/s, verifier 200/s, registrar and admin 1000/s.
    fn default() -> Self {
        let n = |v: u32| NonZeroU32::new(v);
        RateLimits {
            per_second: [n(20), n(50), n(200), n(1000), n(1000)],
        }
    }
}

impl RateLimits {
    /// No limit for any role.
    pub fn unlimited() -> Self {
        RateLimits {
            per_second: [None; 5],
        }
    }

    /// The rate of `role` (`None` = unlimited).
    pub fn get(&self, role: Role) -> Option<NonZeroU32> {
        self.per_second[index(role)]
    }

    /// Sets the rate of `role` (`None` = unlimited).
    pub fn set(&mut self, role: Role, per_second: Option<NonZeroU32>) {
        self.per_second[index(role)] = per_second;
    }

    /// Parses one `ROLE=N` setting (`N` requests per second, or `off`), as `--rate-limit`
    /// takes it.
    pub fn parse_setting(s: &str) -> Result<(Role, Option<NonZeroU32>), String> {
        let (role, n) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not ROLE=N (e.g. anonymous=20)"))?;
        let role = Role::parse(role.trim()).ok_or_else(|| {
            format!(
                "`{}` is not a role: anonymous, citizen, verifier, registrar or admin",
                role.trim()
            )
        })?;
        let n = n.trim();
        if n.eq_ignore_ascii_case("off") {
            return Ok((role, None));
        }
        match n.parse::<u32>().ok().and_then(NonZeroU32::new) {
            Some(v) => Ok((role, Some(v))),
            None => Err(format!(
                "`{n}` is not a rate: give requests per second (1 or more), or `off`"
            )),
        }
    }
}

/// Whom a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientKey {
    V4([u8; 4]),
    /// The /64 prefix.
    V6([u8; 8]),
    Subject(Arc<str>),
    /// No address known (a router served without connect info): one shared bucket.
    Unknown,
}

impl ClientKey {
    fn of(principal: &Principal, addr: Option<IpAddr>) -> ClientKey {
        if let Some(sub) = &principal.subject {
            return ClientKey::Subject(Arc::from(sub.as_str()));
        }
        match addr.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(a)) => ClientKey::V4(a.octets()),
            Some(IpAddr::V6(a)) => {
                let o = a.octets();
                let mut p = [0u8; 8];
                p.copy_from_slice(&o[..8]);
                ClientKey::V6(p)
            }
            None => ClientKey::Unknown,
        }
    }
}

type Keyed = RateLimiter<ClientKey, DefaultKeyedStateStore<ClientKey>, DefaultClock>;

struct RoleLimiter {
    rate: NonZeroU32,
    limiter: Keyed,
}

/// Anonymous clients' daily allowance of listed records (schema's `list_quota`): a GCRA
/// bucket per client that holds a day's records and refills evenly over the day, so a
/// client that spent it gets records back at the daily rate rather than all at midnight.
struct ListLimiter {
    per_day: NonZeroU32,
    limiter: Keyed,
}

/// The limiters of every role, shared by the layer and the handlers' [`Charge`]s.
pub(crate) struct Limiter {
    roles: [Option<RoleLimiter>; 5],
    lists: Option<ListLimiter>,
    clock: DefaultClock,
    started: Instant,
    /// Milliseconds since `started` of the last sweep.
    last_sweep: AtomicU64,
    metrics: Arc<Metrics>,
}

/// How often idle clients are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A refusal: what to tell the client.
struct Refused {
    retry_after_secs: u64,
    message: String,
}

impl Limiter {
    /// `list_quota`: records a day an anonymous client may list (`None` = no bound).
    pub(crate) fn new(
        limits: &RateLimits,
        list_quota: Option<NonZeroU32>,
        metrics: Arc<Metrics>,
    ) -> Limiter {
        let clock = DefaultClock::default();
        let roles = Role::ALL.map(|role| {
            limits.get(role).map(|rate| RoleLimiter {
                rate,
                limiter: RateLimiter::dashmap_with_clock(
                    Quota::per_second(rate).allow_burst(rate),
                    clock.clone(),
                ),
            })
        });
        let lists = list_quota.map(|per_day| ListLimiter {
            per_day,
            limiter: RateLimiter::dashmap_with_clock(
                // A day's records refill evenly: one every 86 400 / per_day seconds.
                Quota::with_period(DAY / per_day.get())
                    .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(per_day),
                clock.clone(),
            ),
        });
        Limiter {
            roles,
            lists,
            clock,
            started: Instant::now(),
            last_sweep: AtomicU64::new(0),
            metrics,
        }
    }

    /// Takes `n` requests' worth from the client's bucket.
    fn charge(&self, role: Role, key: &ClientKey, n: u32) -> Result<(), Refused> {
        self.maybe_sweep();
        let Some(rl) = &self.roles[index(role)] else {
            return Ok(());
        };
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        let who = match role {
            Role::Anonymous => "anonymous clients (per address)".to_string(),
            r => format!("the {r} role (per token subject)"),
        };
        match rl.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let secs = secs.max(1);
                Err(Refused {
                    retry_after_secs: secs,
                    message: format!(
                        "rate limit exceeded: the limit for {who} is {} requests per second; \
                         retry after {secs} s",
                        rl.rate
                    ),
                })
            }
            Err(_) => Err(Refused {
                retry_after_secs: 1,
                message: format!(
                    "a batch of {n} operations is more than the limit for {who} of {} \
                     requests per second allows at once; send smaller batches",
                    rl.rate
                ),
            }),
        }
    }

    /// Forgets clients whose buckets are full again, at most once per [`SWEEP_EVERY`].
    fn maybe_sweep(&self) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_sweep.load(Ordering::Relaxed);
        if now.saturating_sub(last) < SWEEP_EVERY.as_millis() as u64 {
            return;
        }
        if self
            .last_sweep
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another request is sweeping
        }
        let mut remembered = 0;
        let lists = self.lists.iter().map(|l| &l.limiter);
        for limiter in self.roles.iter().flatten().map(|r| &r.limiter).chain(lists) {
            let before = limiter.len();
            limiter.retain_recent();
            let after = limiter.len();
            if before > 4 * after.max(1024) {
                limiter.shrink_to_fit();
            }
            remembered += after;
        }
        self.metrics.set_rate_limit_clients(remembered);
    }

    fn refuse(&self, role: Role, refused: Refused, request: &HeaderMap) -> Response {
        self.metrics.record_rate_limited(role);
        tracing::debug!(role = role.as_str(), "rate limited");
        let mut r = crate::refuse::refusal(
            StatusCode::TOO_MANY_REQUESTS,
            crate::Code::RateLimited.as_str(),
            &refused.message,
            request,
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(refused.retry_after_secs),
        );
        r
    }
}

impl Limiter {
    /// Charges a request whose token was refused to its address, as an anonymous one: a
    /// flood of forged tokens is limited like any other anonymous flood (the request is
    /// still refused with 401, never served as anonymous). The 429 to send instead, if over.
    pub(crate) fn charge_refused_token(&self, req: &Request) -> Option<Response> {
        let key = ClientKey::of(&Principal::ANONYMOUS, ClientAddr::of(req));
        self.charge(Role::Anonymous, &key, 1)
            .err()
            .map(|refused| self.refuse(Role::Anonymous, refused, req.headers()))
    }
}

#[cfg(test)]
impl Limiter {
    /// Charges one anonymous request from `ip`; whether it was admitted.
    pub(crate) fn admit_addr(&self, ip: IpAddr) -> bool {
        self.charge(
            Role::Anonymous,
            &ClientKey::of(&Principal::ANONYMOUS, Some(ip)),
            1,
        )
        .is_ok()
    }

    /// Clients remembered, over all roles and the list allowance.
    pub(crate) fn remembered(&self) -> usize {
        let lists = self.lists.iter().map(|l| l.limiter.len());
        self.roles
            .iter()
            .flatten()
            .map(|r| r.limiter.len())
            .chain(lists)
            .sum()
    }
}

/// What a request was charged to, for the handler to charge more (a batch's other
/// operations). In the request's extensions once the layer has admitted it.
#[derive(Clone)]
pub(crate) struct Charge {
    limiter: Arc<Limiter>,
    role: Role,
    key: ClientKey,
    /// The client's address, for [`Charge::for_principal`].
    addr: Option<IpAddr>,
}

impl Charge {
    /// The same client signed in as `principal` (a WebSocket's `connection_init` token):
    /// charged to that principal's role and subject from then on.
    pub(crate) fn for_principal(&self, principal: &Principal) -> Charge {
        Charge {
            limiter: self.limiter.clone(),
            role: principal.role,
            key: ClientKey::of(principal, self.addr),
            addr: self.addr,
        }
    }

    /// Charges one operation that has no HTTP response of its own (a subscription started
    /// on an open WebSocket): the refusal's message when over the limit.
    pub(crate) fn one(&self) -> Result<(), String> {
        self.limiter
            .charge(self.role, &self.key, 1)
            .map_err(|refused| {
                self.limiter.metrics.record_rate_limited(self.role);
                refused.message
            })
    }

    /// The daily allowance of listed records, for the request's GraphQL data: only for
    /// anonymous callers, and only when the allowance is bounded.
    pub(crate) fn list_allowance(&self) -> Option<schema::ListAllowance> {
        if self.role != Role::Anonymous {
            return None;
        }
        self.limiter.lists.as_ref()?;
        Some(schema::ListAllowance(Arc::new(ListCharge {
            limiter: self.limiter.clone(),
            key: self.key.clone(),
        })))
    }

    /// Charges `n` more requests: `None` when admitted, else the 429 response to send.
    pub(crate) fn more(&self, n: usize, request: &HeaderMap) -> Option<Response> {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.limiter
            .charge(self.role, &self.key, n)
            .err()
            .map(|refused| self.limiter.refuse(self.role, refused, request))
    }
}

/// One anonymous client's daily allowance of listed records (see [`Charge::list_allowance`]).
struct ListCharge {
    limiter: Arc<Limiter>,
    key: ClientKey,
}

impl schema::ListQuota for ListCharge {
    fn take(&self, records: u32) -> Result<(), schema::QuotaSpent> {
        let Some(lists) = &self.limiter.lists else {
            return Ok(());
        };
        let Some(n) = NonZeroU32::new(records) else {
            return Ok(());
        };
        // Refusals are counted as errors with their code (`landql_api_errors_total`).
        let spent = |retry_after| schema::QuotaSpent {
            per_day: lists.per_day.get(),
            retry_after,
        };
        match lists.limiter.check_key_n(&self.key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(spent(not_until.wait_time_from(self.limiter.clock.now()))),
            // More records at once than a whole day's allowance: never, at this allowance.
            Err(_) => Err(spent(DAY)),
        }
    }
}

/// The layer (see the module docs). Runs after the auth layer, which put the principal in.
pub(crate) async fn layer(
    State(limiter): State<Arc<Limiter>>,
    mut req: Request,
    next: Next,
) -> Response {
    let principal = req
        .extensions()
        .get::<Principal>()
        .cloned()
        .unwrap_or(Principal::ANONYMOUS);
    let addr = ClientAddr::of(&req);
    let key = ClientKey::of(&principal, addr);
    if let Err(refused) = limiter.charge(principal.role, &key, 1) {
        return limiter.refuse(principal.role, refused, req.headers());
    }
    req.extensions_mut().insert(Charge {
        limiter: limiter.clone(),
        role: principal.role,
        key,
        addr,
    });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(
            RateLimits::parse_setting("citizen=7"),
            Ok((Role::Citizen, NonZeroU32::new(7)))
        );
        assert_eq!(
            RateLimits::parse_setting("anonymous=off"),
            Ok((Role::Anonymous, None))
        );
        for bad in ["citizen", "root=5", "admin=0", "admin=-1", "admin=lots"] {
            assert!(RateLimits::parse_setting(bad).is_err(), "{bad}");
        }
        let d = RateLimits::default();
        assert_eq!(d.get(Role::Anonymous), NonZeroU32::new(20));
        assert_eq!(d.get(Role::Admin), NonZeroU32::new(1000));
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        let p = Principal::ANONYMOUS;
        assert_eq!(ClientKey::of(&p, Some(a)), ClientKey::of(&p, Some(b)));
        assert_ne!(ClientKey::of(&p, Some(a)), ClientKey::of(&p, Some(c)));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(
            ClientKey::of(&p, Some(mapped)),
            ClientKey::V4([10, 0, 0, 1])
        );
    }
}
