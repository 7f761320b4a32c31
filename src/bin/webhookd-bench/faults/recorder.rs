//! The receiver of a fault run: every endpoint is `/e/{n}` on one server
//! that checks each request's Standard Webhooks signature and records, for
//! every request, the endpoint, the sender's address (each node sends from
//! its own loopback address), when it arrived and when it was answered,
//! the event, and how far the signature's timestamp was from this clock.
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub endpoint: u32,
    pub sender: Option<IpAddr>,
    pub event: String,
    pub arrived: Instant,
    pub answered: Instant,
    pub signed: bool,
    /// |signature timestamp − this machine's clock|, seconds.
    pub clock_skew: i64,
    /// Answered 200 (not refused on purpose).
    pub status_ok: bool,
}

/// Endpoint `n`'s Standard Webhooks key, answer delay and whether it
/// refuses every event's first request.
type Behaviour = (Vec<u8>, Duration, bool);

#[derive(Default)]
struct State {
    endpoints: RwLock<HashMap<u32, Behaviour>>,
    /// (endpoint, event) seen once (for endpoints that refuse the first).
    seen: Mutex<std::collections::HashSet<(u32, String)>>,
    requests: Mutex<Vec<Request>>,
}

pub struct Recorder {
    pub base: String,
    state: Arc<State>,
    server: actix_web::dev::ServerHandle,
}

impl Recorder {
    pub fn start() -> anyhow::Result<Self> {
        let state = Arc::new(State::default());
        let data = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/e/{n}", web::post().to(receive))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Ok(Self {
            base,
            state,
            server: handle,
        })
    }

    pub fn url(&self, endpoint: u32) -> String {
        format!("{}/e/{endpoint}", self.base)
    }

    /// Endpoint `n` checks signatures with `secret` (`whsec_…`) and
    /// answers after `delay`; with `refuses_first`, 500 to the first
    /// request of each event.
    pub fn register(&self, endpoint: u32, secret: &str, delay: Duration, refuses_first: bool) {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap_or_default();
        self.state
            .endpoints
            .write()
            .unwrap()
            .insert(endpoint, (key, delay, refuses_first));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many of `events` have not reached every one of `endpoints`
    /// with an answer of 200 yet (pairs).
    pub fn missing(&self, endpoints: &[u32], events: &[&str]) -> usize {
        let requests = self.state.requests.lock().unwrap();
        let delivered: std::collections::HashSet<(u32, &str)> = requests
            .iter()
            .filter(|r| r.status_ok)
            .map(|r| (r.endpoint, r.event.as_str()))
            .collect();
        endpoints
            .iter()
            .flat_map(|n| events.iter().map(move |e| (*n, *e)))
            .filter(|pair| !delivered.contains(pair))
            .count()
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

async fn receive(
    request: HttpRequest,
    path: web::Path<u32>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let arrived = Instant::now();
    let endpoint = path.into_inner();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signatures) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let Some((key, delay, refuses_first)) = state.endpoints.read().unwrap().get(&endpoint).cloned()
    else {
        return HttpResponse::NotFound().finish();
    };
    let signed = {
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&body);
        let expected = STANDARD.encode(mac.finalize().into_bytes());
        signatures
            .split(' ')
            .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
    };
    let clock_skew = timestamp
        .parse::<i64>()
        .map(|t| (t - chrono::Utc::now().timestamp()).abs())
        .unwrap_or(i64::MAX);
    let status_ok = !refuses_first || !state.seen.lock().unwrap().insert((endpoint, id.clone()));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    state.requests.lock().unwrap().push(Request {
        endpoint,
        sender: request.peer_addr().map(|a| a.ip()),
        event: id,
        arrived,
        answered: Instant::now(),
        signed,
        clock_skew,
        status_ok,
    });
    if status_ok {
        HttpResponse::Ok().finish()
    } else {
        HttpResponse::InternalServerError().finish()
    }
}
