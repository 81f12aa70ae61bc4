//! `heft check`: what is wrong in one dump, as a list a person or a CI gate reads.

use heft::check::{Finding, Severity};
use std::fmt::Write as _;

/// `heft check`'s own flags.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// A certificate that ends within this many days is reported as `cert-expiring`.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    pub within: u32,
    /// Judge certificates at this instant (RFC 3339, such as 2027-01-31T00:00:00Z) instead of
    /// now.
    #[arg(long, value_name = "TIME", value_parser = parse_instant)]
    pub at: Option<i64>,
    /// Exit with code 1 when a finding is at least this severe (a CI gate). Without it the exit
    /// code is 0 whatever is found; bad input is always 2.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
}

fn parse_instant(text: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("{text:?}: not an RFC 3339 time ({e})"))
}

/// The least severe finding that fails `--fail-on`.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
}

impl CheckArgs {
    /// The library's options for these flags.
    pub fn options(&self) -> heft::check::Options {
        let now = heft::check::Options::default();
        heft::check::Options {
            now_unix: self.at.unwrap_or(now.now_unix),
            within_days: self.within,
        }
    }

    /// Whether `findings` fail the gate.
    pub fn fails(&self, findings: &[Finding]) -> bool {
        let worst = match self.fail_on {
            None => return false,
            Some(FailOn::Error) => Severity::Error,
            Some(FailOn::Warning) => Severity::Warning,
        };
        findings.iter().any(|f| f.severity <= worst)
    }
}

/// `heft check -o json`: `{"findings": [...]}`.
pub fn json(findings: &[Finding]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
        .expect("findings serialize")
        + "\n"
}

/// `heft check` as text: one line per finding, most severe first, then the counts.
pub fn text(findings: &[Finding]) -> String {
    let mut o = String::new();
    let code_width = findings.iter().map(|f| f.code.len()).max().unwrap_or(0);
    for f in findings {
        let _ = writeln!(
            o,
            "{:<7}  {:<code_width$}  {} {}: {}",
            f.severity.name(),
            f.code,
            f.kind,
            crate::readiness_text::one_line(&f.name, 300),
            crate::readiness_text::one_line(&f.message, 600),
        );
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let _ = writeln!(
        o,
        "{} finding(s): {} error(s), {} warning(s), {} info",
        findings.len(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    o
}
