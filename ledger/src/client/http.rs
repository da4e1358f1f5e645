//! [`Ledger`] over the devnet's HTTP API.

use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use futures::StreamExt;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::{BlockStream, Ledger, LedgerError, ProofDocument};
use crate::canonical::Hash32;
use crate::id::PropertyId;
use crate::model::{Block, ChainInfo, Proposal, Receipt, RecordVersion};

/// A block stream that has sent nothing — not even a keep-alive line — for this long is
/// treated as dead.
const STREAM_IDLE: Duration = Duration::from_secs(30);

/// A span for one ledger call, named for it; a client span in OpenTelemetry's terms.
macro_rules! call_span {
    ($name:literal) => {
        tracing::info_span!($name, otel.kind = "client")
    };
}

/// Adds the entered span's OpenTelemetry context as W3C `traceparent` and `tracestate`
/// headers, through the process's global propagator; with none installed (no traces)
/// nothing is added.
fn with_trace_context(req: RequestBuilder) -> RequestBuilder {
    struct Headers(Vec<(String, String)>);
    impl opentelemetry::propagation::Injector for Headers {
        fn set(&mut self, key: &str, value: String) {
            self.0.push((key.to_string(), value));
        }
    }
    let mut headers = Headers(Vec::new());
    opentelemetry::global::get_text_map_propagator(|p| {
        let cx = tracing_opentelemetry::OpenTelemetrySpanExt::context(&tracing::Span::current());
        p.inject_context(&cx, &mut headers);
    });
    headers.0.into_iter().fold(req, |r, (k, v)| r.header(k, v))
}

/// A devnet node reached over HTTP.
#[derive(Clone)]
pub struct HttpLedger {
    base: String,
    client: Client,
    timeout: Duration,
}

impl HttpLedger {
    /// `base` is the node's address, e.g. `http://127.0.0.1:7050`. `timeout` bounds each
    /// request except block streams (which are bounded by idleness instead) and submissions
    /// (which wait for a block).
    pub fn new(base: &str, timeout: Duration) -> Result<Self, LedgerError> {
        let client = Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| LedgerError::Unavailable(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            client,
            timeout,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, LedgerError> {
        match self.get_text(path).await? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| LedgerError::Decode(format!("{path}: {e}"))),
            None => Ok(None),
        }
    }

    /// The body of a GET; `None` for a 404.
    async fn get_text(&self, path: &str) -> Result<Option<String>, LedgerError> {
        let resp = with_trace_context(
            self.client
                .get(format!("{}{path}", self.base))
                .timeout(self.timeout),
        )
        .send()
        .await
        .map_err(unavailable)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check(resp).await?;
        resp.text().await.map(Some).map_err(unavailable)
    }
}

fn unavailable(e: reqwest::Error) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

/// Turns a non-success status into the ledger's own error code and message.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, LedgerError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let code = body
        .pointer("/error/code")
        .and_then(|v| v.as_str())
        .unwrap_or("HTTP_ERROR")
        .to_string();
    let message = body
        .pointer("/error/message")
        .and_then(|v| v.as_str())
        .map_or_else(|| format!("HTTP status {status}"), str::to_string);
    if status.is_server_error() {
        Err(LedgerError::Unavailable(format!("{code}: {message}")))
    } else {
        Err(LedgerError::Refused { code, message })
    }
}

#[async_trait]
impl Ledger for HttpLedger {
    async fn info(&self) -> Result<ChainInfo, LedgerError> {
        self.get_json("/v1/info")
            .instrument(call_span!("ledger.info"))
            .await?
            .ok_or_else(|| LedgerError::Decode("/v1/info answered 404".into()))
    }

    async fn blocks(&self, channel: &str, from: u64) -> Result<BlockStream, LedgerError> {
        // The span covers opening the stream, not the stream's life.
        let resp = async {
            let resp = with_trace_context(self.client.get(format!(
                "{}/v1/channels/{channel}/blocks?from={from}",
                self.base
            )))
            .send()
            .await
            .map_err(unavailable)?;
            check(resp).await
        }
        .instrument(call_span!("ledger.blocks"))
        .await?;
        let body = resp.bytes_stream();
        struct Lines<S> {
            body: S,
            buf: BytesMut,
            done: bool,
        }
        let state = Lines {
            body: body.boxed(),
            buf: BytesMut::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut s| async move {
            loop {
                if s.done {
                    return None;
                }
                if let Some(pos) = s.buf.iter().position(|b| *b == b'\n') {
                    let line = s.buf.split_to(pos + 1);
                    let line = &line[..pos];
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue; // keep-alive
                    }
                    let block = serde_json::from_slice::<Block>(line)
                        .map_err(|e| LedgerError::Decode(format!("block stream: {e}")));
                    if block.is_err() {
                        s.done = true;
                    }
                    return Some((block, s));
                }
                match tokio::time::timeout(STREAM_IDLE, s.body.next()).await {
                    Ok(Some(Ok(chunk))) => s.buf.extend_from_slice(chunk.chunk()),
                    Ok(Some(Err(e))) => {
                        s.done = true;
                        return Some((Err(unavailable(e)), s));
                    }
                    Ok(None) => {
                        s.done = true;
                        return Some((
                            Err(LedgerError::Unavailable("block stream ended".into())),
                            s,
                        ));
                    }
                    Err(_) => {
                        s.done = true;
                        return Some((
                            Err(LedgerError::Unavailable(format!(
                                "block stream silent for {}s",
                                STREAM_IDLE.as_secs()
                            ))),
                            s,
                        ));
                    }
                }
            }
        });
        Ok(stream.boxed())
    }

    async fn record(&self, id: &PropertyId) -> Result<Option<RecordVersion>, LedgerError> {
        self.get_json(&format!("/v1/records/{id}"))
            .instrument(call_span!("ledger.record"))
            .await
    }

    async fn history(&self, id: &PropertyId) -> Result<Vec<RecordVersion>, LedgerError> {
        Ok(self
            .get_json(&format!("/v1/records/{id}/history"))
            .instrument(call_span!("ledger.history"))
            .await?
            .unwrap_or_default())
    }

    async fn proof(&self, tx_id: &Hash32) -> Result<Option<ProofDocument>, LedgerError> {
        let Some(json) = self
            .get_text(&format!("/v1/transactions/{tx_id}/proof"))
            .instrument(call_span!("ledger.proof"))
            .await?
        else {
            return Ok(None);
        };
        let proof = serde_json::from_str(&json)
            .map_err(|e| LedgerError::Decode(format!("proof of {tx_id}: {e}")))?;
        Ok(Some(ProofDocument { json, proof }))
    }

    async fn submit(
        &self,
        channel: &str,
        proposals: &[Proposal],
    ) -> Result<Vec<Receipt>, LedgerError> {
        async {
            let resp = with_trace_context(
                self.client
                    .post(format!("{}/v1/channels/{channel}/transactions", self.base))
                    .json(proposals),
            )
            .send()
            .await
            .map_err(unavailable)?;
            let resp = check(resp).await?;
            resp.json()
                .await
                .map_err(|e| LedgerError::Decode(format!("receipts: {e}")))
        }
        .instrument(call_span!("ledger.submit"))
        .await
    }
}
