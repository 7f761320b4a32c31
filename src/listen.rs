//! `webhookd listen`: a local receiver for developers (like `stripe listen`).
//! It prints every webhook it receives and whether each of the three
//! signature schemes verifies with the given secret.
use crate::delivery::signing::{check_signatures, Check};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aggregates::values::WebhookSecret;
use std::io::Write;

pub async fn listen(port: u16, secret: Option<WebhookSecret>) -> std::io::Result<()> {
    let secret = web::Data::new(secret);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(secret.clone())
            .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
            .default_service(web::to(receive))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?;
    for address in server.addrs() {
        println!("webhookd listen: waiting for webhooks on http://{address}/ (Ctrl-C to stop)");
    }
    std::io::stdout().flush()?;
    server.run().await
}

/// Prints the request; answers 200, or 400 when a secret was given and a
/// signature that is present does not verify.
async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    secret: web::Data<Option<WebhookSecret>>,
) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let mut out = format!(
        "--> {} {}  webhook-id: {}\n",
        req.method(),
        req.uri(),
        header("webhook-id").unwrap_or("-")
    );
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    out.push_str(&pretty);
    out.push('\n');
    let mut all_good = true;
    match secret.as_ref() {
        Some(secret) => {
            let now = chrono::Utc::now().timestamp();
            for (scheme, check) in check_signatures(secret, header, &body, now) {
                let shown = match check {
                    Check::Valid => "valid",
                    Check::Invalid => {
                        all_good = false;
                        "INVALID"
                    }
                    Check::Missing => "missing",
                };
                out.push_str(&format!("    {scheme:<20} {shown}\n"));
            }
        }
        None => out.push_str("    signatures not checked (pass --secret whsec_… to check them)\n"),
    }
    print!("{out}");
    let _ = std::io::stdout().flush();
    if all_good {
        HttpResponse::Ok().body("ok")
    } else {
        HttpResponse::BadRequest().body("signature did not verify")
    }
}
