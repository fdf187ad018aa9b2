//! The crowd's command-line flags, shared by `surge` and `lazio`, and the
//! report files both can write.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};

use super::{Arrivals, LaunchEvent, Report, SurgeOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Curve {
    /// Everyone at opening time, spread over --jitter-seconds.
    Opening,
    /// A rate rising linearly from zero over --ramp-seconds.
    Ramp,
    /// Poisson arrivals at --rate per second.
    Poisson,
}

/// How the crowd behaves.
#[derive(Debug, Clone, Args)]
pub struct CrowdArgs {
    /// Visitors in the crowd.
    #[arg(long, default_value_t = 10_000)]
    pub visitors: u64,
    /// How they arrive.
    #[arg(long, value_enum, default_value_t = Curve::Opening)]
    pub arrivals: Curve,
    /// --arrivals opening: arrivals spread over this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub jitter_seconds: f64,
    /// --arrivals ramp: the rate rises over this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub ramp_seconds: f64,
    /// --arrivals poisson: visitors per second.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// A launch event: the room's pre-queue is open from the start, and the
    /// room opens this many seconds later (the draw orders the pre-queue,
    /// then admission starts). `lazio` configures its gateway so; `surge`
    /// checks it against the room's published opening.
    #[arg(long, value_name = "SECONDS")]
    pub opens_in: Option<u64>,
    /// With --opens-in: the share of visitors who arrive during the
    /// pre-queue, spread evenly over it; the others arrive after the
    /// opening, on the --arrivals curve counted from the opening.
    #[arg(
        long,
        default_value_t = 0.5,
        value_name = "SHARE",
        requires = "opens_in"
    )]
    pub pre_queue_share: f64,
    /// Fraction of visitors who abandon while waiting (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub abandon: f64,
    /// Their average patience, in seconds.
    #[arg(long, default_value_t = 120.0)]
    pub abandon_after_seconds: f64,
    /// Fraction who reload every few seconds and retry errors at once.
    #[arg(long, default_value_t = 0.1)]
    pub impatient: f64,
    /// Average pause between steps inside the site, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub think_ms: u64,
    /// Requests in flight at once, all visitors together.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// How long a visitor waits for an answer, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Errors after which a visitor gives up.
    #[arg(long, default_value_t = 20)]
    pub give_up_after_errors: u32,
    /// Seed of the crowd's randomness (same seed, same crowd).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl CrowdArgs {
    /// Checks the ranges clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        let fraction = |name: &str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(format!("--{name} must be between 0 and 1, not {value}"))
            }
        };
        fraction("abandon", self.abandon)?;
        fraction("impatient", self.impatient)?;
        fraction("pre-queue-share", self.pre_queue_share)?;
        if let Some(seconds) = self.opens_in
            && !(1..=86_400).contains(&seconds)
        {
            return Err(format!(
                "--opens-in must be from 1 to 86400 seconds, not {seconds}"
            ));
        }
        if self.visitors == 0 {
            return Err("--visitors must be at least 1".to_owned());
        }
        if self.connections == 0 {
            return Err("--connections must be at least 1".to_owned());
        }
        for (name, value) in [
            ("jitter-seconds", self.jitter_seconds),
            ("ramp-seconds", self.ramp_seconds),
            ("abandon-after-seconds", self.abandon_after_seconds),
        ] {
            if !(0.0..=86_400.0).contains(&value) {
                return Err(format!("--{name} must be between 0 and 86400, not {value}"));
            }
        }
        if !(self.rate > 0.0 && self.rate <= 10_000_000.0) {
            return Err(format!("--rate must be above 0, not {}", self.rate));
        }
        Ok(())
    }

    /// The surge's options for `target`, before the caller adds what it
    /// knows about the site.
    pub fn options(&self, target: http::Uri) -> SurgeOptions {
        let mut options = SurgeOptions::new(target, self.visitors);
        options.arrivals = match self.arrivals {
            Curve::Opening => Arrivals::Opening {
                jitter: Duration::from_secs_f64(self.jitter_seconds),
            },
            Curve::Ramp => Arrivals::Ramp {
                over: Duration::from_secs_f64(self.ramp_seconds),
            },
            Curve::Poisson => Arrivals::Poisson {
                per_second: self.rate,
            },
        };
        options.abandon = self.abandon;
        options.abandon_after = Duration::from_secs_f64(self.abandon_after_seconds);
        options.impatient = self.impatient;
        options.think = Duration::from_millis(self.think_ms);
        options.connections = self.connections;
        options.request_timeout = Duration::from_secs(self.request_timeout_seconds.max(1));
        options.give_up_after_errors = self.give_up_after_errors.max(1);
        options.seed = self.seed;
        options.progress = !self.quiet;
        options
    }

    /// Seconds from the first arrival to the last (with --opens-in, the
    /// pre-queue and then the curve).
    pub fn arrival_span_seconds(&self) -> f64 {
        let curve = match self.arrivals {
            Curve::Opening => self.jitter_seconds,
            Curve::Ramp => self.ramp_seconds,
            Curve::Poisson => self.visitors as f64 / self.rate,
        };
        curve + self.opens_in.unwrap_or(0) as f64
    }

    /// The launch event of --opens-in, for a room that opens at `opens_at`.
    pub fn launch_event(&self, opens_at: SystemTime) -> Option<LaunchEvent> {
        self.opens_in.map(|_| LaunchEvent {
            opens_at,
            pre_queue_share: self.pre_queue_share,
        })
    }
}

/// `--size-factor F`: a number above 0 and finite (a room sized 0 times,
/// or infinitely, is no rehearsal).
pub fn size_factor(text: &str) -> Result<f64, String> {
    let factor: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if factor.is_finite() && factor > 0.0 {
        Ok(factor)
    } else {
        Err(format!("must be above 0 and finite, not {text}"))
    }
}

/// Where reports go.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the report as Markdown here (the chart is linked from it).
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Write an SVG chart here (default: next to --markdown, as .svg).
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
}

impl OutputArgs {
    pub fn chart_path(&self) -> Option<PathBuf> {
        self.chart.clone().or_else(|| {
            self.markdown
                .as_ref()
                .map(|markdown| markdown.with_extension("svg"))
        })
    }
}

/// The Markdown that shows the chart at `chart` from a report beside it
/// (nothing without a chart).
pub fn chart_link(chart: Option<&Path>) -> String {
    let Some(name) = chart.and_then(Path::file_name) else {
        return String::new();
    };
    format!(
        "\n![Visitors let in per second and the site's load]({})\n",
        name.to_string_lossy()
    )
}

/// Writes `text` to `path`, naming the file on error.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value).expect("reports serialize");
    write(path, &(text + "\n"))
}

/// A report as JSON.
pub fn report_json(report: &Report) -> serde_json::Value {
    serde_json::to_value(report).expect("reports serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_size_factor_is_a_finite_number_above_0() {
        assert_eq!(size_factor("1"), Ok(1.0));
        assert_eq!(size_factor("10"), Ok(10.0));
        assert_eq!(size_factor("0.25"), Ok(0.25));
        for refused in ["0", "-1", "-0.0", "inf", "NaN", "1e309"] {
            let problem = size_factor(refused).expect_err(refused);
            assert!(
                problem.contains("above 0 and finite"),
                "{refused}: {problem}"
            );
        }
        assert_eq!(
            size_factor("ten"),
            Err("\"ten\" is not a number".to_owned())
        );
    }
}
