//! placeholder
use clap::Args;
use std::process::ExitCode;
#[derive(Debug, Args)]
pub struct HttpArgs {}
pub async fn run(_args: HttpArgs) -> ExitCode {
    ExitCode::FAILURE
}
