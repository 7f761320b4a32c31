//! The successes and failures of an endpoint's attempts over the last 24
//! hours, one bar pair an hour, drawn server-side as SVG (no script, no
//! inline style: colours come from the stylesheet's classes).
use maud::{html, Markup};
use projections::{Db, Error};

const HOUR: i64 = 3_600_000_000;

/// Attempts an hour, oldest hour first: (successes, failures).
pub async fn last_24_hours(db: &Db, config_id: i64, now: i64) -> Result<Vec<(i64, i64)>, Error> {
    let since = now - 24 * HOUR;
    let rows = projections::deliveries::attempts_by_hour(db, config_id, since).await?;
    let mut hours = vec![(0, 0); 24];
    for (hour, ok, failed) in rows {
        if let Some(slot) = usize::try_from(hour).ok().and_then(|h| hours.get_mut(h)) {
            *slot = (ok, failed);
        }
    }
    Ok(hours)
}

pub fn svg(hours: &[(i64, i64)]) -> Markup {
    let (width, height, bar) = (720, 160, 30);
    let most = hours
        .iter()
        .map(|(ok, failed)| ok + failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = |n: i64| n * (height - 20) / most;
    let (ok_total, failed_total): (i64, i64) = hours
        .iter()
        .fold((0, 0), |(a, b), (ok, failed)| (a + ok, b + failed));
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox={"0 0 " (width) " " (height)}
            role="img" aria-label={(ok_total) " successful and " (failed_total) " failed attempts in the last 24 hours"} {
            @for (i, (ok, failed)) in hours.iter().enumerate() {
                @let x = i as i64 * bar + 2;
                @let ok_height = scale(*ok);
                @let failed_height = scale(*failed);
                rect.ok x=(x) y=(height - ok_height) width=(bar - 4) height=(ok_height) {
                    title { (ok) " succeeded" }
                }
                rect.failed x=(x) y=(height - ok_height - failed_height) width=(bar - 4) height=(failed_height) {
                    title { (failed) " failed" }
                }
            }
            text x="4" y="14" { "max " (most) " / hour" }
        }
        p.legend { span.ok { "■" } " " (ok_total) " succeeded · " span.failed { "■" } " " (failed_total) " failed" }
    }
}
