//! The SMS provider: a Twilio-compatible Messages API,
//! `POST {sms_base_url}/2010-04-01/Accounts/{sms_account_sid}/Messages.json` with the
//! form fields `To`, `From`, `Body` and HTTP basic auth `sid:token`; a `201` with
//! `{sid, status}` means it took the message.
//!
//! The manifest must let the component reach `sms_base_url`: its
//! `allowed_outbound_hosts` is the variable `sms_outbound_host` (default
//! `https://api.twilio.com`), which an operator using another provider (or a test's
//! stand-in) sets to that provider's `scheme://host:port`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use estore_shared::notify::SendError;
use serde::Deserialize;
use spin_sdk::http::{Method, Request, Response};

pub struct Provider {
    base_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
}

/// What the provider answers to a message it took.
#[derive(Deserialize)]
struct Accepted {
    sid: String,
}

impl Provider {
    /// The provider the variables describe; `None` when `sms_base_url` is empty. A
    /// variable the host cannot give is the deployment's fault: worth a retry.
    pub fn configured() -> Result<Option<Provider>, String> {
        let base_url = variable("sms_base_url")?;
        let base_url = base_url.trim().trim_end_matches('/');
        if base_url.is_empty() {
            return Ok(None);
        }
        Ok(Some(Provider {
            base_url: base_url.to_owned(),
            account_sid: variable("sms_account_sid")?,
            auth_token: variable("sms_auth_token")?,
            from: variable("sms_from")?,
        }))
    }

    /// Sends `body` to `to`; the provider's message sid.
    pub fn send(&self, to: &str, body: &str) -> Result<String, SendError> {
        let url = format!("{}/2010-04-01/Accounts/{}/Messages.json", self.base_url, self.account_sid);
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to)
            .append_pair("From", &self.from)
            .append_pair("Body", body)
            .finish();
        let credentials = STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token));
        let request = Request::builder()
            .method(Method::Post)
            .uri(url.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {credentials}"))
            .header("accept", "application/json")
            .body(form)
            .build();
        let response: Response = spin_sdk::http::run(spin_sdk::http::send(request))
            .map_err(|e| SendError::Transient(format!("the SMS provider cannot be reached: {e}")))?;
        let status = *response.status();
        match status {
            200..=299 => serde_json::from_slice::<Accepted>(response.body()).map(|accepted| accepted.sid).map_err(|e| {
                // It answered yes, so the text may well be on its way: sending it
                // again would be worse than not knowing its sid.
                eprintln!("the SMS provider's {status} is not a message: {e}");
                SendError::Permanent(format!("the SMS provider answered {status} without a message sid"))
            }),
            // Too many requests: the provider asks to slow down, not to give up.
            429 | 500..=599 => Err(SendError::Transient(format!("the SMS provider answered {status}{}", detail(&response)))),
            _ => Err(SendError::Permanent(format!("the SMS provider refused the message: {status}{}", detail(&response)))),
        }
    }
}

/// `: <message>` from a Twilio error body (`{"code": 21211, "message": "..."}`), or
/// nothing.
fn detail(response: &Response) -> String {
    #[derive(Deserialize)]
    struct ProviderError {
        message: String,
    }
    serde_json::from_slice::<ProviderError>(response.body()).map(|e| format!(": {}", e.message)).unwrap_or_default()
}

fn variable(name: &str) -> Result<String, String> {
    spin_sdk::variables::get(name).map_err(|e| format!("variable {name}: {e}"))
}
