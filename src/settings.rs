use aggregates::values::UrlPolicy;

/// Where the service stores its data when `DATABASE_URL` is unset.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://webhookd.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Everything `webhookd serve` needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    pub bind: String,
    /// Development mode: `http://` and loopback/private targets are allowed.
    pub dev: bool,
    /// HTTP worker threads; `None` means one per core.
    pub workers: Option<usize>,
}

impl Settings {
    pub fn url_policy(&self) -> UrlPolicy {
        if self.dev {
            UrlPolicy::development()
        } else {
            UrlPolicy::production()
        }
    }
}
