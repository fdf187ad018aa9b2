//! Running `wrk` and reading its report.

use std::path::Path;

use serde::Serialize;
use tokio::process::Command;

/// How hard wrk pushes: its threads and open connections.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub threads: u32,
    pub connections: u32,
}

/// What one wrk run reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Responses received.
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses with a status of 400 or more (wrk's "Non-2xx or 3xx").
    pub non_2xx: u64,
    pub socket_errors: SocketErrors,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SocketErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    pub timeout: u64,
}

impl SocketErrors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout
    }
}

/// Runs `wrk --latency` for `seconds` against `url` with extra request
/// headers (`Name: value`), and reads its report.
pub async fn run(
    wrk: &Path,
    load: Load,
    seconds: u64,
    url: &str,
    headers: &[String],
) -> Result<Figures, String> {
    let mut command = Command::new(wrk);
    command
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{seconds}s"))
        .arg("--latency");
    for header in headers {
        command.arg("-H").arg(header);
    }
    command.arg(url).kill_on_drop(true);
    let output = command
        .output()
        .await
        .map_err(|error| format!("cannot run {}: {error}", wrk.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk against {url} failed ({}): {}{}",
            output.status,
            text,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    parse(&text).ok_or_else(|| format!("cannot read wrk's report for {url}:\n{text}"))
}

/// Reads wrk's text report (`--latency`).
pub fn parse(report: &str) -> Option<Figures> {
    let mut figures = Figures::default();
    let mut seen_requests = false;
    let mut seen_rate = false;
    for line in report.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [requests, "requests", "in", seconds, ..] => {
                figures.requests = requests.parse().ok()?;
                figures.seconds = duration_ms(seconds.trim_end_matches(','))? / 1000.0;
                seen_requests = true;
            }
            ["Requests/sec:", rate] => {
                figures.requests_per_second = rate.parse().ok()?;
                seen_rate = true;
            }
            ["50%", latency] => figures.p50_ms = duration_ms(latency)?,
            ["99%", latency] => figures.p99_ms = duration_ms(latency)?,
            ["Non-2xx", "or", "3xx", "responses:", count] => {
                figures.non_2xx = count.parse().ok()?;
            }
            ["Socket", "errors:", rest @ ..] => {
                // connect 0, read 0, write 0, timeout 0
                for pair in rest.chunks(2) {
                    let [kind, count] = pair else { return None };
                    let count = count.trim_end_matches(',').parse().ok()?;
                    match *kind {
                        "connect" => figures.socket_errors.connect = count,
                        "read" => figures.socket_errors.read = count,
                        "write" => figures.socket_errors.write = count,
                        "timeout" => figures.socket_errors.timeout = count,
                        _ => return None,
                    }
                }
            }
            _ => {}
        }
    }
    (seen_requests && seen_rate).then_some(figures)
}

/// A wrk duration (`785.00us`, `1.20ms`, `10.00s`, `2.00m`) in milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let units = [
        ("us", 0.001),
        ("ms", 1.0),
        ("s", 1000.0),
        ("m", 60_000.0),
        ("h", 3_600_000.0),
    ];
    units.iter().find_map(|(unit, scale)| {
        let number = text.strip_suffix(unit)?;
        number.parse::<f64>().ok().map(|value| value * scale)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.07ms  456.35us  13.44ms   83.73%
    Req/Sec    30.22k     2.43k   35.53k    74.50%
  Latency Distribution
     50%  785.00us
     75%    1.20ms
     90%    1.48ms
     99%    2.68ms
  601543 requests in 10.00s, 86.63MB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 601500
Requests/sec:  60148.42
Transfer/sec:      8.66MB
";

    #[test]
    fn reads_a_report() {
        let figures = parse(REPORT).expect("a report");
        assert_eq!(figures.requests, 601_543);
        assert_eq!(figures.seconds, 10.0);
        assert_eq!(figures.requests_per_second, 60_148.42);
        assert!((figures.p50_ms - 0.785).abs() < 1e-9);
        assert_eq!(figures.p99_ms, 2.68);
        assert_eq!(figures.non_2xx, 601_500);
        assert_eq!(
            figures.socket_errors,
            SocketErrors {
                connect: 0,
                read: 2,
                write: 0,
                timeout: 7
            }
        );
    }

    #[test]
    fn a_clean_report_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|line| !line.contains("errors") && !line.contains("Non-2xx"))
            .map(|line| format!("{line}\n"))
            .collect();
        let figures = parse(&clean).expect("a report");
        assert_eq!(figures.non_2xx, 0);
        assert_eq!(figures.socket_errors.total(), 0);
    }

    #[test]
    fn rejects_what_is_not_a_report() {
        assert_eq!(
            parse("unable to connect to 127.0.0.1:1 Connection refused"),
            None
        );
        assert_eq!(duration_ms("1.5s"), Some(1500.0));
        assert_eq!(duration_ms("2.00m"), Some(120_000.0));
        assert_eq!(duration_ms("fast"), None);
    }
}
