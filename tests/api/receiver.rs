//! A real HTTP receiver on loopback for delivery tests: it records every
//! request (path, headers, body, arrival time) and answers as its script says.
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How the receiver answers its n-th request (0-based).
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    /// The status with a `Retry-After: <seconds>` header.
    RetryAfter(u16, u64),
    /// Never answers (until the client gives up).
    Hang,
    /// Answers with the status once [`Receiver::release`] is called.
    AfterRelease(u16),
    /// Answers the status at once, then drips its body a byte every 200 ms
    /// for a minute.
    Drip(u16),
    /// Answers the status after this many milliseconds.
    After(u16, u64),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// The status the receiver answered (0 while it hangs).
    pub replied: u16,
    /// The sender's address.
    pub peer: Option<std::net::IpAddr>,
    /// When the answer was sent (`None` while it is not; for a dripping
    /// body, when its status went).
    pub answered: Option<Instant>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// Answers request `n` (0-based) carrying this `webhook-id`.
type Script = Box<dyn Fn(usize, &str) -> Reply + Send + Sync>;

struct State {
    received: Mutex<Vec<Received>>,
    script: Script,
    arrived: Notify,
    released: tokio::sync::watch::Sender<bool>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<State>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub fn ok() -> Self {
        Self::scripted(|_| Reply::Status(200))
    }

    pub fn scripted(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        Self::with_script(Box::new(move |n, _| script(n)))
    }

    /// Answers 503 to the first request of every event, 200 to the rest.
    pub fn refusing_first_attempts() -> Self {
        let seen = Mutex::new(std::collections::HashSet::new());
        Self::with_script(Box::new(move |_, webhook_id| {
            if seen.lock().unwrap().insert(webhook_id.to_owned()) {
                Reply::Status(503)
            } else {
                Reply::Status(200)
            }
        }))
    }

    /// Answers as `script` says for the `attempt`-th request (0-based)
    /// carrying the same `webhook-id`.
    pub fn by_attempt(script: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Self {
        let attempts = Mutex::new(HashMap::<String, usize>::new());
        Self::with_script(Box::new(move |_, webhook_id| {
            let attempt = {
                let mut attempts = attempts.lock().unwrap();
                let seen = attempts.entry(webhook_id.to_owned()).or_default();
                *seen += 1;
                *seen - 1
            };
            script(webhook_id, attempt)
        }))
    }

    fn with_script(script: Script) -> Self {
        let state = Arc::new(State {
            received: Mutex::new(Vec::new()),
            script,
            arrived: Notify::new(),
            released: tokio::sync::watch::Sender::new(false),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let shared = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        actix_web::rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hooks"),
            state,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }

    /// Requests answered 2xx that repeat a delivery (a `webhook-id`) this
    /// receiver had already answered 2xx before `before`: what a sender
    /// that had until `before` to record the first answer sent again.
    pub fn repeats_of_answers_before(&self, before: Instant) -> usize {
        let mut first: HashMap<String, (Instant, usize)> = HashMap::new();
        for request in self.received() {
            if !(200..300).contains(&request.replied) {
                continue;
            }
            let answered = request.answered.unwrap_or(request.at);
            let entry = first
                .entry(request.header("webhook-id").to_owned())
                .or_insert((answered, 0));
            entry.0 = entry.0.min(answered);
            entry.1 += 1;
        }
        first
            .values()
            .filter(|(answered, _)| *answered < before)
            .map(|(_, n)| n - 1)
            .sum()
    }

    /// Lets every `AfterRelease` request answer, now and from now on.
    pub fn release(&self) {
        self.state.released.send_replace(true);
    }

    /// Waits until at least `count` requests arrived; panics after `within`.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.state.arrived.notified();
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "only {} of {count} requests arrived in {within:?}",
                received.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }

    /// Waits until `condition` holds for what arrived; panics after
    /// `within`.
    pub async fn wait_until(
        &self,
        within: Duration,
        condition: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.state.arrived.notified();
            let received = self.received();
            if condition(&received) {
                return received;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "not met in {within:?} with {} requests",
                received.len()
            );
            let _ = tokio::time::timeout(left, notified).await;
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let webhook_id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let index = {
        let mut received = state.received.lock().unwrap();
        received.push(Received {
            path: req.path().to_owned(),
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
            replied: 0,
            peer: req.peer_addr().map(|addr| addr.ip()),
            answered: None,
        });
        received.len() - 1
    };
    let reply = (state.script)(index, &webhook_id);
    if let Reply::Status(code) | Reply::RetryAfter(code, _) | Reply::Drip(code) = reply {
        let mut received = state.received.lock().unwrap();
        received[index].replied = code;
        received[index].answered = Some(Instant::now());
    }
    state.arrived.notify_waiters();
    if let Reply::After(code, ms) = reply {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let mut received = state.received.lock().unwrap();
        received[index].replied = code;
        received[index].answered = Some(Instant::now());
    }
    if let Reply::AfterRelease(code) = reply {
        let mut released = state.released.subscribe();
        let _ = released.wait_for(|released| *released).await;
        let mut received = state.received.lock().unwrap();
        received[index].replied = code;
        received[index].answered = Some(Instant::now());
    }
    match reply {
        Reply::Status(code) | Reply::AfterRelease(code) | Reply::After(code, _) => {
            HttpResponse::build(status(code)).body("receiver says hi")
        }
        Reply::RetryAfter(code, seconds) => HttpResponse::build(status(code))
            .insert_header(("Retry-After", seconds.to_string()))
            .finish(),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
        Reply::Drip(code) => {
            let drip = futures_util::stream::unfold(0u32, |sent| async move {
                if sent > 0 {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                (sent < 300).then(|| {
                    let byte = actix_web::web::Bytes::from_static(b".");
                    (Ok::<_, std::io::Error>(byte), sent + 1)
                })
            });
            HttpResponse::build(status(code)).streaming(drip)
        }
    }
}

fn status(code: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(code).unwrap()
}
