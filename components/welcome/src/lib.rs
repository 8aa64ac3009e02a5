//! The store's front door until the store services exist: `GET /api` describes the
//! API; any other path under it is a problem+json 404.

use serde_json::{Value, json};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let path = req.path();
    if path.trim_end_matches('/') != "/api" {
        return problem(404, "Not Found", &format!("no such path: {path}"));
    }
    match req.method() {
        Method::Get => json_response(
            200,
            "application/json",
            json!({
                "name": "electronic-store",
                "description": "An electronic store built from WebAssembly components",
                // Filled in as the store services arrive.
                "services": [
                    {"name": "users", "paths": ["/api/users", "/api/users/me", "/api/users/{id}", "/api/auth/login"]},
                    {"name": "catalog", "paths": ["/api/categories", "/api/categories/{id}", "/api/products", "/api/products/{id}"]},
                    {"name": "inventory", "paths": ["/api/inventory/{product_id}"]},
                    {"name": "cart", "paths": ["/api/cart", "/api/cart/items", "/api/cart/items/{product_id}"]},
                    {"name": "payments", "paths": ["/api/payments/{order_id}"]},
                    {"name": "shipping", "paths": ["/api/shipments/{order_id}", "/api/shipments/{order_id}/events"]},
                    {"name": "email", "paths": ["/api/notifications/email", "/api/promotions"]},
                    {"name": "sms", "paths": ["/api/notifications/sms"]},
                ],
            }),
        ),
        method => {
            let mut resp = problem(
                405,
                "Method Not Allowed",
                &format!("{method} is not allowed on {path}"),
            );
            resp.set_header("allow", "GET");
            resp
        }
    }
}

/// An RFC 9457 problem details response.
fn problem(status: u16, title: &str, detail: &str) -> Response {
    json_response(
        status,
        "application/problem+json",
        json!({"type": "about:blank", "title": title, "status": status, "detail": detail}),
    )
}

fn json_response(status: u16, content_type: &str, body: Value) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.to_string())
        .build()
}
