//! The CLI's side of the admin API: `estore deploy`, `rollback`, `components` and
//! `watch` find the running host through its state dir and call it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A running host's admin API.
pub struct AdminClient {
    address: String,
    token: String,
}

impl AdminClient {
    /// The host serving `state_dir`: its address and token as `estore up` left them.
    pub fn for_state_dir(state_dir: &Path) -> Result<AdminClient> {
        let address_file = super::address_file(state_dir);
        let address = std::fs::read_to_string(&address_file)
            .with_context(|| {
                format!(
                    "no running host found for the state dir {} ({} is missing): start one with `estore up`",
                    state_dir.display(),
                    address_file.display()
                )
            })?
            .trim()
            .to_owned();
        let token = match std::env::var(super::TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()) {
            Some(token) => token.trim().to_owned(),
            None => {
                let file = super::token_file(state_dir);
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read the admin token {} (or set {})", file.display(), super::TOKEN_ENV))?
                    .trim()
                    .to_owned()
            }
        };
        Ok(AdminClient { address, token })
    }

    /// `method path` with `body`; answers the JSON of a success, or the API's error.
    pub async fn call(&self, method: Method, path: &str, body: Vec<u8>, source: Option<&str>) -> Result<serde_json::Value> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("the host's admin API at {} does not answer: is `estore up` running?", self.address))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.address)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(source) = source {
            request = request.header("x-estore-source", source);
        }
        let response = sender.send_request(request.body(Full::new(Bytes::from(body)))?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        if status != StatusCode::OK {
            let error = json["error"].as_str().map_or_else(|| String::from_utf8_lossy(&body).into_owned(), str::to_owned);
            bail!("{error} ({status})");
        }
        Ok(json)
    }

    /// Deploys the wasm in `file` as the new version of `id`.
    pub async fn deploy(&self, id: &str, file: &Path) -> Result<serde_json::Value> {
        let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        let source = file.display().to_string();
        self.call(Method::POST, &format!("/v1/components/{id}/deploy"), wasm, Some(&source)).await
    }

    pub async fn rollback(&self, id: &str) -> Result<serde_json::Value> {
        self.call(Method::POST, &format!("/v1/components/{id}/rollback"), Vec::new(), None).await
    }

    pub async fn components(&self) -> Result<serde_json::Value> {
        self.call(Method::GET, "/v1/components", Vec::new(), None).await
    }
}
