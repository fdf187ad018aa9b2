//! `anteroom-bench verify-draw`: recompute a room's draw from its public
//! JSON (`GET /_anteroom/draw?room=NAME`), as any visitor or auditor can.
//!
//! It checks that SHA-256 of the published seed is the commitment, that the
//! algorithm is the one this build computes, then prints every ticket's
//! place, or one. Exit codes: 0 the seed matches and the places follow; 1
//! the seed does not match the commitment; 2 the draw cannot be checked
//! (unreadable, not JSON, still pending, an unknown algorithm, a ticket not
//! in the pre-queue).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anteroom_store::draw::{Draw, DrawError, PublicDraw};
use clap::Args;

use crate::fetch;

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Exit status: 0 the seed matches the commitment (and the places follow), \
                        1 it does not, 2 the draw cannot be checked (unreadable, pending, \
                        unknown algorithm, bad ticket). See docs/draw.md."
)]
pub struct VerifyDrawArgs {
    /// The public draw JSON: a file, `-` for standard input, or an
    /// http:// URL such as http://gateway/_anteroom/draw?room=vaccini.
    #[arg(long, value_name = "FILE_OR_URL")]
    pub draw: String,
    /// Print only this ticket's place.
    #[arg(long, value_name = "N")]
    pub ticket: Option<u64>,
    /// List the draw in order of place (who is 1st, 2nd, …) instead of
    /// in order of ticket.
    #[arg(long, conflicts_with = "ticket")]
    pub by_place: bool,
}

/// Why the public draw could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("standard input: {0}")]
    Stdin(#[source] io::Error),
    #[error(
        "{url}: only http:// is fetched here; download the JSON (e.g. `curl -o draw.json '{url}'`) and pass the file"
    )]
    NotHttp { url: String },
    #[error("{0}")]
    Fetch(String),
    #[error("{url}: answered {status}: {body}")]
    Status {
        url: String,
        status: http::StatusCode,
        body: String,
    },
    #[error("{from}: not the public draw JSON: {source}")]
    Json {
        from: String,
        #[source]
        source: serde_json::Error,
    },
}

pub async fn command(args: VerifyDrawArgs) -> ExitCode {
    let public = match read(&args.draw).await {
        Ok(public) => public,
        Err(error) => {
            eprintln!("anteroom-bench verify-draw: {error}");
            return ExitCode::from(2);
        }
    };
    let verified = match public.verify() {
        Ok(verified) => verified,
        Err(error) => {
            eprintln!("anteroom-bench verify-draw: {error}");
            return ExitCode::from(if error.is_mismatch() { 1 } else { 2 });
        }
    };
    eprintln!(
        "room {:?}: the seed matches the commitment {}; {} pre-queue tickets; {}",
        verified.room,
        verified.commitment,
        verified.draw.pre_queue(),
        anteroom_store::draw::ALGORITHM,
    );
    let order = match (args.ticket, args.by_place) {
        (Some(ticket), _) => Listing::One(ticket),
        (None, false) => Listing::ByTicket,
        (None, true) => Listing::ByPlace,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    match print(&verified.draw, order, &mut out).and_then(|()| Ok(out.flush()?)) {
        Ok(()) => ExitCode::SUCCESS,
        // `| head`: the reader has what it wanted.
        Err(Printing::Io(error)) if error.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("anteroom-bench verify-draw: {error}");
            ExitCode::from(2)
        }
    }
}

/// Reads the public draw from a file, standard input (`-`) or an http:// URL.
pub async fn read(source: &str) -> Result<PublicDraw, ReadError> {
    let bytes = if source.starts_with("http://") {
        let reply = fetch::Client::new()
            .get(source, &[("accept", "application/json")])
            .await
            .map_err(ReadError::Fetch)?;
        if !reply.status.is_success() {
            let mut body = reply.text();
            body.truncate(body.floor_char_boundary(200));
            return Err(ReadError::Status {
                url: source.to_owned(),
                status: reply.status,
                body,
            });
        }
        reply.body.to_vec()
    } else if source.contains("://") {
        return Err(ReadError::NotHttp {
            url: source.to_owned(),
        });
    } else if source == "-" {
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut io::stdin(), &mut bytes).map_err(ReadError::Stdin)?;
        bytes
    } else {
        std::fs::read(source).map_err(|source_error| ReadError::File {
            path: PathBuf::from(source),
            source: source_error,
        })?
    };
    serde_json::from_slice(&bytes).map_err(|error| ReadError::Json {
        from: source.to_owned(),
        source: error,
    })
}

/// What to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `ticket N: place M of P`.
    One(u64),
    /// A header, then `ticket<TAB>place` for tickets 1 to P.
    ByTicket,
    /// The same columns, for places 1 to P.
    ByPlace,
}

#[derive(Debug, thiserror::Error)]
pub enum Printing {
    #[error(transparent)]
    Draw(#[from] DrawError),
    #[error("writing: {0}")]
    Io(#[from] io::Error),
}

/// Writes the draw's places. An error for a ticket outside the pre-queue.
pub fn print(draw: &Draw, listing: Listing, out: &mut impl Write) -> Result<(), Printing> {
    let pre_queue = draw.pre_queue();
    match listing {
        Listing::One(ticket) => {
            let place = draw.place(ticket)?;
            writeln!(out, "ticket {ticket}: place {place} of {pre_queue}")?;
        }
        Listing::ByTicket => {
            writeln!(out, "ticket\tplace")?;
            for ticket in 1..=pre_queue {
                writeln!(out, "{ticket}\t{}", draw.place(ticket)?)?;
            }
        }
        Listing::ByPlace => {
            writeln!(out, "ticket\tplace")?;
            for place in 1..=pre_queue {
                writeln!(out, "{}\t{place}", draw.ticket_at(place)?)?;
            }
        }
    }
    Ok(())
}
