//! Bearer tokens (design/api.md, "Limits and roles"): `Authorization: Bearer <JWT>` →
//! a [`schema::Principal`] in the request's extensions, put there by `layer`.
//!
//! One key is configured: an HS256 secret, or a PEM public key whose type decides the
//! algorithm (RSA → RS256, P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA). A token must be
//! signed with exactly that algorithm — `alg: none` and algorithm confusion (an HS256 token
//! "signed" with the RSA public key's bytes) are refused before any signature check — and
//! carry `exp`, `sub` and a `role` of citizen, verifier, registrar or admin; `nbf` is
//! checked when present, `aud` and `iss` when configured, with a bounded clock skew.
//!
//! **A bad token is never anonymous.** Any token that fails — or any token at all when the
//! server has no key — is HTTP 401 with `WWW-Authenticate: Bearer error="invalid_token"`
//! and an UNAUTHENTICATED error saying exactly what is wrong (never the key). Only a
//! request with no Authorization header is anonymous.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use schema::{Principal, Role};
use serde_json::{Map, Value};

use crate::metrics::Metrics;

/// The most clock skew tolerated on `exp` and `nbf`: more would make expiry meaningless.
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);

/// Longest token accepted, in bytes (real tokens are a few hundred).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Longest `sub` accepted: subjects key the rate limiter, so their size is bounded.
pub const MAX_SUBJECT_BYTES: usize = 256;

/// Shortest HS256 secret accepted: RFC 7518 §3.2 asks for a key at least as long as the
/// hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a token must say besides its signature. The default: no audience or issuer
/// required, 30 s of clock skew.
#[derive(Debug, Clone)]
pub struct TokenRules {
    /// Required `aud` (one of the token's audiences must equal it).
    pub audience: Option<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (at most [`MAX_LEEWAY`]).
    pub leeway: Duration,
}

impl Default for TokenRules {
    fn default() -> Self {
        TokenRules {
            audience: None,
            issuer: None,
            leeway: Duration::from_secs(30),
        }
    }
}

/// Why a key could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the HS256 secret is {0} bytes; it must be at least {MIN_SECRET_BYTES} (256 bits)")]
    SecretTooShort(usize),
    #[error(
        "the public key is not a PEM RSA, EC (P-256 or P-384) or Ed25519 public key \
         (`-----BEGIN PUBLIC KEY-----` or `-----BEGIN RSA PUBLIC KEY-----`)"
    )]
    NotAPublicKey,
    #[error("the EC public key is on a curve other than P-256 or P-384")]
    UnsupportedCurve,
    #[error("the clock skew allowance is {0:?}; the most allowed is {MAX_LEEWAY:?}")]
    LeewayTooLarge(Duration),
    #[error("signing the token failed: {0}")]
    Signing(String),
}

/// Why a token was refused. The messages go to the client: they say what is wrong with the
/// token, never anything about the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error(
        "this server accepts no bearer tokens (it has no --jwt-secret or --jwt-public-key); \
         send the request without Authorization"
    )]
    NoKey,
    #[error("the Authorization header must be `Bearer <token>`")]
    Scheme,
    #[error("the bearer token is malformed: {0}")]
    Malformed(String),
    #[error("the bearer token is unsigned (alg: none); this server accepts {0} tokens only")]
    Unsigned(&'static str),
    #[error("the bearer token is signed with {got}; this server accepts {want} tokens only")]
    WrongAlgorithm { got: String, want: &'static str },
    #[error("the bearer token's signature does not verify")]
    BadSignature,
    #[error("the bearer token expired at {0} (exp, seconds since the epoch)")]
    Expired(String),
    #[error("the bearer token is not valid before {0} (nbf, seconds since the epoch)")]
    NotYetValid(String),
    #[error("the bearer token's audience (aud) is not {0:?}")]
    WrongAudience(String),
    #[error("the bearer token's issuer (iss) is not {0:?}")]
    WrongIssuer(String),
    #[error("the bearer token has no `{0}` claim")]
    MissingClaim(String),
    #[error("the bearer token's `{0}` claim {1}")]
    BadClaim(&'static str, &'static str),
    #[error("the bearer token's role {0:?} is not one of citizen, verifier, registrar, admin")]
    UnknownRole(String),
}

impl TokenError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::NoKey => "no_key",
            TokenError::Scheme => "scheme",
            TokenError::Malformed(_) => "malformed",
            TokenError::Unsigned(_) => "unsigned",
            TokenError::WrongAlgorithm { .. } => "wrong_algorithm",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired(_) => "expired",
            TokenError::NotYetValid(_) => "not_yet_valid",
            TokenError::WrongAudience(_) => "wrong_audience",
            TokenError::WrongIssuer(_) => "wrong_issuer",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::BadClaim(..) => "bad_claim",
            TokenError::UnknownRole(_) => "unknown_role",
        }
    }
}

/// The configured token verifier, or none (every token refused, every request without one
/// anonymous). Cheap to clone.
#[derive(Clone, Default)]
pub struct Auth(Option<Arc<Verifier>>);

struct Verifier {
    key: DecodingKey,
    alg_name: &'static str,
    validation: Validation,
    rules: TokenRules,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_tuple("Auth").field(&self.algorithm()).finish()
    }
}

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        _ => "another algorithm",
    }
}

impl Auth {
    /// No key: requests without a token are anonymous, requests with one are refused.
    pub fn disabled() -> Auth {
        Auth(None)
    }

    /// HS256 with a shared secret (at least [`MIN_SECRET_BYTES`]).
    pub fn hs256(secret: &[u8], rules: TokenRules) -> Result<Auth, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        // A secret of MIN_SECRET_BYTES or more is never refused (only an empty one is).
        let key =
            DecodingKey::from_secret(secret).map_err(|_| KeyError::SecretTooShort(secret.len()))?;
        Auth::with(key, Algorithm::HS256, rules)
    }

    /// A PEM public key; its type decides the algorithm (RS256, ES256/ES384 by curve, EdDSA).
    pub fn public_key_pem(pem: &[u8], rules: TokenRules) -> Result<Auth, KeyError> {
        let (key, alg) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, Algorithm::RS256)
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            // The key is the uncompressed point: 1 + 2 × the field size.
            let alg = match k.try_get_as_bytes().map(<[u8]>::len) {
                Ok(65) => Algorithm::ES256,
                Ok(97) => Algorithm::ES384,
                _ => return Err(KeyError::UnsupportedCurve),
            };
            (k, alg)
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, Algorithm::EdDSA)
        } else {
            return Err(KeyError::NotAPublicKey);
        };
        Auth::with(key, alg, rules)
    }

    fn with(key: DecodingKey, alg: Algorithm, rules: TokenRules) -> Result<Auth, KeyError> {
        if rules.leeway > MAX_LEEWAY {
            return Err(KeyError::LeewayTooLarge(rules.leeway));
        }
        let mut v = Validation::new(alg);
        v.leeway = rules.leeway.as_secs();
        v.validate_exp = true;
        v.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &rules.audience {
            Some(a) => {
                v.set_audience(&[a]);
                required.push("aud");
            }
            None => v.validate_aud = false,
        }
        if let Some(i) = &rules.issuer {
            v.set_issuer(&[i]);
            required.push("iss");
        }
        v.set_required_spec_claims(&required);
        Ok(Auth(Some(Arc::new(Verifier {
            key,
            alg_name: alg_name(alg),
            validation: v,
            rules,
        }))))
    }

    /// The algorithm tokens must use (`None` when no key is configured).
    pub fn algorithm(&self) -> Option<&'static str> {
        self.0.as_ref().map(|v| v.alg_name)
    }

    /// Verifies a token (without the `Bearer ` prefix).
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let Some(v) = &self.0 else {
            return Err(TokenError::NoKey);
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed(format!(
                "it is longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [head, payload, _signature] = parts[..] else {
            return Err(TokenError::Malformed(
                "a JWT is three base64url parts separated by dots".into(),
            ));
        };
        // The header is read here, before jsonwebtoken, to tell `alg: none` and a wrong
        // algorithm apart from other damage. Nothing read here is trusted.
        let header = decode_part(head, "header")?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => a.as_str(),
            Some(_) => {
                return Err(TokenError::Malformed(
                    "its header's `alg` is not a string".into(),
                ))
            }
            None => return Err(TokenError::Malformed("its header has no `alg`".into())),
        };
        if alg.eq_ignore_ascii_case("none") {
            return Err(TokenError::Unsigned(v.alg_name));
        }
        if alg != v.alg_name {
            return Err(TokenError::WrongAlgorithm {
                got: alg.chars().take(20).collect(),
                want: v.alg_name,
            });
        }
        let claims = match jsonwebtoken::decode::<Map<String, Value>>(token, &v.key, &v.validation)
        {
            Ok(data) => data.claims,
            Err(e) => return Err(v.explain(e.kind(), payload)),
        };
        let sub = match claims.get("sub") {
            Some(Value::String(s)) if s.is_empty() => {
                return Err(TokenError::BadClaim("sub", "is empty"))
            }
            Some(Value::String(s)) if s.len() > MAX_SUBJECT_BYTES => {
                return Err(TokenError::BadClaim("sub", "is longer than 256 bytes"))
            }
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(TokenError::BadClaim("sub", "is not a string")),
            None => return Err(TokenError::MissingClaim("sub".into())),
        };
        let role = match claims.get("role") {
            Some(Value::String(r)) => match Role::parse(r) {
                Some(role) if role.is_signed_in() => role,
                _ => return Err(TokenError::UnknownRole(r.chars().take(40).collect())),
            },
            Some(_) => return Err(TokenError::BadClaim("role", "is not a string")),
            None => return Err(TokenError::MissingClaim("role".into())),
        };
        Ok(Principal::signed_in(role, sub))
    }

    /// The caller of an HTTP request: anonymous without an Authorization header, else the
    /// verified token's principal.
    pub(crate) fn principal_of(&self, headers: &HeaderMap) -> Result<Principal, TokenError> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Ok(Principal::ANONYMOUS);
        };
        if values.next().is_some() {
            return Err(TokenError::Malformed(
                "the request has more than one Authorization header".into(),
            ));
        }
        let value = value.to_str().map_err(|_| TokenError::Scheme)?;
        self.verify(bearer(value)?)
    }

    /// The caller of a WebSocket, from its `connection_init` payload: `{"Authorization":
    /// "Bearer …"}` (any case of the key) or `{"authToken": "…"}`. `None` when the payload
    /// carries neither.
    pub(crate) fn principal_of_init(
        &self,
        payload: &Value,
    ) -> Result<Option<Principal>, TokenError> {
        let Some(obj) = payload.as_object() else {
            return Ok(None);
        };
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("authorization") {
                let Some(s) = v.as_str() else {
                    return Err(TokenError::Scheme);
                };
                return self.verify(bearer(s)?).map(Some);
            }
            if k == "authToken" {
                let Some(s) = v.as_str() else {
                    return Err(TokenError::Malformed("`authToken` is not a string".into()));
                };
                // Some clients put the scheme in authToken too.
                let token = bearer(s).unwrap_or(s);
                return self.verify(token).map(Some);
            }
        }
        Ok(None)
    }
}

impl Verifier {
    /// jsonwebtoken's error as a client message. `payload` (unverified) only supplies the
    /// times quoted in expiry messages.
    fn explain(&self, kind: &ErrorKind, payload: &str) -> TokenError {
        let claim = |name: &str| {
            decode_part(payload, "claims")
                .ok()
                .and_then(|c| c.get(name).map(Value::to_string))
                .unwrap_or_else(|| "?".into())
        };
        match kind {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::ExpiredSignature => TokenError::Expired(claim("exp")),
            ErrorKind::ImmatureSignature => TokenError::NotYetValid(claim("nbf")),
            ErrorKind::InvalidAudience => {
                TokenError::WrongAudience(self.rules.audience.clone().unwrap_or_default())
            }
            ErrorKind::InvalidIssuer => {
                TokenError::WrongIssuer(self.rules.issuer.clone().unwrap_or_default())
            }
            // jsonwebtoken also says "missing" for an `exp` or `nbf` it cannot read.
            ErrorKind::MissingRequiredClaim(c) => match (c.as_str(), claim(c) != "?") {
                ("exp", true) => TokenError::BadClaim("exp", "is not a number of seconds"),
                ("nbf", true) => TokenError::BadClaim("nbf", "is not a number of seconds"),
                _ => TokenError::MissingClaim(c.clone()),
            },
            ErrorKind::InvalidClaimFormat(c) => TokenError::BadClaim(
                match c.as_str() {
                    "exp" => "exp",
                    "nbf" => "nbf",
                    "aud" => "aud",
                    "iss" => "iss",
                    "sub" => "sub",
                    _ => "registered",
                },
                "has the wrong type",
            ),
            ErrorKind::InvalidAlgorithm => TokenError::WrongAlgorithm {
                got: "another algorithm".into(),
                want: self.alg_name,
            },
            ErrorKind::Base64(_) => TokenError::Malformed("a part is not base64url-encoded".into()),
            ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                TokenError::Malformed("its claims are not a JSON object".into())
            }
            ErrorKind::InvalidToken => {
                TokenError::Malformed("a JWT is three base64url parts separated by dots".into())
            }
            // Anything else is a signature that could not be checked (e.g. of the wrong
            // length for the key): to the client, a signature that does not verify.
            _ => TokenError::BadSignature,
        }
    }
}

/// `Bearer <token>` → the token (the scheme in any case, RFC 7235).
fn bearer(value: &str) -> Result<&str, TokenError> {
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::Scheme);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Malformed(
            "the token after `Bearer` is empty".into(),
        ));
    }
    Ok(token)
}

/// A JWT part as a JSON object.
fn decode_part(part: &str, what: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| TokenError::Malformed(format!("its {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(TokenError::Malformed(format!(
            "its {what} is not a JSON object"
        ))),
    }
}

/// State of [`layer`].
#[derive(Clone)]
pub(crate) struct AuthState {
    pub auth: Auth,
    pub metrics: Arc<Metrics>,
    /// Refused tokens still count against their address's anonymous rate.
    pub limiter: Arc<crate::ratelimit::Limiter>,
}

/// The layer: puts the request's [`Principal`] into its extensions, or answers 401.
pub(crate) async fn layer(State(s): State<AuthState>, mut req: Request, next: Next) -> Response {
    match s.auth.principal_of(req.headers()) {
        Ok(p) => {
            req.extensions_mut().insert(p);
            next.run(req).await
        }
        Err(e) => {
            if let Some(limited) = s.limiter.charge_refused_token(&req) {
                return limited;
            }
            s.metrics.record_unauthenticated(e.reason());
            tracing::debug!(reason = e.reason(), "bearer token refused");
            unauthenticated(&e, req.headers())
        }
    }
}

/// HTTP 401 for a refused token.
pub(crate) fn unauthenticated(e: &TokenError, request: &HeaderMap) -> Response {
    let mut r = crate::refuse::refusal(
        StatusCode::UNAUTHORIZED,
        schema::Code::Unauthenticated.as_str(),
        &e.to_string(),
        request,
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// The refusal of a WebSocket `connection_init` whose token is bad. async-graphql closes a
/// graphql-transport-ws socket with it as the close reason, which WebSocket caps at 123
/// bytes, so the message is cut there (on a character boundary).
pub(crate) fn refused_init(e: &TokenError) -> async_graphql::Error {
    let mut message = format!("UNAUTHENTICATED: {e}");
    if message.len() > 123 {
        let mut cut = 120;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    async_graphql::Error::new(message)
}

/// A random HS256 secret (32 bytes from the OS, hex), for a `landql dev` session.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HS256 token for `role` and `subject`, valid for `ttl` from now — for `landql dev`'s
/// example tokens and for tests; production tokens come from an identity provider.
pub fn issue_hs256(
    secret: &[u8],
    role: Role,
    subject: &str,
    ttl: Duration,
) -> Result<String, KeyError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = serde_json::json!({
        "sub": subject,
        "role": role.as_str(),
        "iat": now,
        "exp": now + ttl.as_secs(),
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret).map_err(|e| KeyError::Signing(e.to_string()))?,
    )
    .map_err(|e| KeyError::Signing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sign(claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET).expect("key"),
        )
        .expect("sign")
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
    }

    #[test]
    fn claims_and_headers() {
        let auth = Auth::hs256(
            SECRET,
            TokenRules {
                leeway: Duration::from_secs(30),
                ..Default::default()
            },
        )
        .expect("auth");
        let ok = sign(serde_json::json!({"sub": "u1", "role": "verifier", "exp": now() + 60}));
        assert_eq!(
            auth.verify(&ok),
            Ok(Principal::signed_in(Role::Verifier, "u1"))
        );
        // Within the leeway.
        let just = sign(serde_json::json!({"sub": "u1", "role": "citizen", "exp": now() - 10}));
        assert!(auth.verify(&just).is_ok());
        for (claims, want) in [
            (
                serde_json::json!({"sub": "u1", "role": "citizen"}),
                TokenError::MissingClaim("exp".into()),
            ),
            (
                serde_json::json!({"role": "citizen", "exp": now() + 60}),
                TokenError::MissingClaim("sub".into()),
            ),
            (
                serde_json::json!({"sub": "u1", "exp": now() + 60}),
                TokenError::MissingClaim("role".into()),
            ),
            (
                serde_json::json!({"sub": "u1", "role": "anonymous", "exp": now() + 60}),
                TokenError::UnknownRole("anonymous".into()),
            ),
            (
                serde_json::json!({"sub": "u1", "role": 3, "exp": now() + 60}),
                TokenError::BadClaim("role", "is not a string"),
            ),
            (
                serde_json::json!({"sub": "u1", "role": "admin", "exp": "soon"}),
                TokenError::BadClaim("exp", "is not a number of seconds"),
            ),
        ] {
            assert_eq!(auth.verify(&sign(claims.clone())), Err(want), "{claims}");
        }
        assert!(Auth::hs256(b"short", TokenRules::default()).is_err());
        assert!(Auth::hs256(
            SECRET,
            TokenRules {
                leeway: Duration::from_secs(301),
                ..Default::default()
            }
        )
        .is_err());
        assert!(Auth::public_key_pem(b"not a key", TokenRules::default()).is_err());

        let mut h = HeaderMap::new();
        assert_eq!(auth.principal_of(&h), Ok(Principal::ANONYMOUS));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dTpw"),
        );
        assert_eq!(auth.principal_of(&h), Err(TokenError::Scheme));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(matches!(
            auth.principal_of(&h),
            Err(TokenError::Malformed(_))
        ));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("bearer {ok}")).expect("header"),
        );
        assert!(auth.principal_of(&h).is_ok());

        let init = serde_json::json!({ "authToken": ok });
        assert!(matches!(auth.principal_of_init(&init), Ok(Some(_))));
        let init = serde_json::json!({ "Authorization": format!("Bearer {ok}") });
        assert!(matches!(auth.principal_of_init(&init), Ok(Some(_))));
        assert_eq!(auth.principal_of_init(&serde_json::json!({})), Ok(None));
        let init = serde_json::json!({ "authToken": "x.y.z" });
        assert!(auth.principal_of_init(&init).is_err());

        // The issued tokens verify.
        let t =
            issue_hs256(SECRET, Role::Registrar, "dev", Duration::from_secs(60)).expect("issue");
        assert_eq!(
            auth.verify(&t),
            Ok(Principal::signed_in(Role::Registrar, "dev"))
        );
        assert_eq!(random_secret().len(), 64);
        assert!(
            !format!("{auth:?}").contains("0123"),
            "Debug never shows the key"
        );
    }
}
