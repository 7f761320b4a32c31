//! The benchmark's receiver: checks every `webhook-signature` and records
//! when each event id arrived at each endpoint.
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How endpoint `n` answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    Ok,
    /// Fails this share of requests (500), at random; webhookd gives up on
    /// a delivery after `attempts` of them.
    Flaky {
        share: f64,
        attempts: u32,
    },
    /// Never answers.
    Hang,
}

#[derive(Default)]
pub struct Tally {
    /// (endpoint, event id) → first arrival.
    pub arrivals: Mutex<HashMap<(u32, String), Instant>>,
    pub duplicates: AtomicU64,
    /// Of every duplicate, when the delivery it repeats first arrived.
    pub repeated_first: Mutex<Vec<Instant>>,
    pub bad_signatures: AtomicU64,
    /// (endpoint, event id) → requests refused on purpose (`Flaky`).
    pub refused: Mutex<HashMap<(u32, String), u32>>,
    /// Deliveries refused as many times as webhookd tries: with random
    /// failures and a finite retry budget some may draw a failure every
    /// time (at 30 % and 11 attempts, ~3.5 % of 20 000-delivery runs have
    /// one). They end `failed` in webhookd by design; not lost.
    pub refused_every_attempt: AtomicU64,
    pub requests: AtomicU64,
}

struct State {
    /// Endpoint → Standard Webhooks key (base64-decoded secret).
    keys: RwLock<HashMap<u32, Vec<u8>>>,
    behaviours: RwLock<HashMap<u32, Behaviour>>,
    tally: Arc<Tally>,
}

pub struct Receiver {
    pub base: String,
    state: web::Data<State>,
}

impl Receiver {
    pub fn start() -> anyhow::Result<Self> {
        let state = web::Data::new(State {
            keys: RwLock::default(),
            behaviours: RwLock::default(),
            tally: Arc::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/e/{n}", web::post().to(receive))
        })
        .workers(1)
        .backlog(4096)
        .max_connections(100_000)
        .listen(listener)?
        .run();
        actix_web::rt::spawn(server);
        Ok(Self {
            base: format!("http://127.0.0.1:{port}"),
            state,
        })
    }

    pub fn url(&self, endpoint: u32) -> String {
        format!("{}/e/{endpoint}", self.base)
    }

    pub fn register(&self, endpoint: u32, secret: &str, behaviour: Behaviour) {
        let key = STANDARD
            .decode(secret.trim_start_matches("whsec_"))
            .unwrap_or_default();
        self.state.keys.write().unwrap().insert(endpoint, key);
        self.state
            .behaviours
            .write()
            .unwrap()
            .insert(endpoint, behaviour);
    }

    pub fn tally(&self) -> Arc<Tally> {
        self.state.tally.clone()
    }
}

async fn receive(
    req: HttpRequest,
    path: web::Path<u32>,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let endpoint = path.into_inner();
    let arrived = Instant::now();
    let tally = &state.tally;
    tally.requests.fetch_add(1, Ordering::Relaxed);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (id, ts, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let valid = state
        .keys
        .read()
        .unwrap()
        .get(&endpoint)
        .is_some_and(|key| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
            mac.update(format!("{id}.{ts}.").as_bytes());
            mac.update(&body);
            let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
            signature.split(' ').any(|s| s == expected)
        });
    if !valid {
        tally.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::BadRequest().finish();
    }
    let behaviour = state
        .behaviours
        .read()
        .unwrap()
        .get(&endpoint)
        .copied()
        .unwrap_or(Behaviour::Ok);
    match behaviour {
        Behaviour::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return HttpResponse::Ok().finish();
        }
        Behaviour::Flaky { share, attempts } if rand::thread_rng().gen_bool(share) => {
            let mut refused = tally.refused.lock().unwrap();
            let count = refused.entry((endpoint, id.to_owned())).or_default();
            *count += 1;
            if *count == attempts {
                tally.refused_every_attempt.fetch_add(1, Ordering::Relaxed);
            }
            return HttpResponse::InternalServerError().finish();
        }
        _ => {}
    }
    let mut arrivals = tally.arrivals.lock().unwrap();
    match arrivals.entry((endpoint, id.to_owned())) {
        std::collections::hash_map::Entry::Occupied(first) => {
            tally.duplicates.fetch_add(1, Ordering::Relaxed);
            tally.repeated_first.lock().unwrap().push(*first.get());
        }
        std::collections::hash_map::Entry::Vacant(slot) => {
            slot.insert(arrived);
        }
    }
    HttpResponse::NoContent().finish()
}
