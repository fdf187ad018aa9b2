//! `anteroom-bench verify-draw`: the public draw JSON from a file or a URL,
//! the seed checked against the commitment, every place (or one) printed;
//! exit 1 on a mismatch, 2 on a draw that cannot be checked.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output};

use anteroom_store::draw::{self, PublicDraw, Seed};

fn seed() -> Seed {
    Seed::from_hex("4cbc371f3c7cfe8933f2d55c80778d1a84f359df137b0092b5c43513fe606196").unwrap()
}

fn drawn(pre_queue: u64) -> PublicDraw {
    PublicDraw::drawn(
        "vaccini",
        &seed(),
        pre_queue,
        Some("2021-02-01T12:00:00+01:00".to_owned()),
    )
}

/// A file of this test's own, removed when dropped.
struct DrawFile(PathBuf);

impl DrawFile {
    fn with(name: &str, text: &str) -> DrawFile {
        let path = std::env::temp_dir().join(format!(
            "anteroom-verify-draw-{}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        DrawFile(path)
    }

    fn of(name: &str, draw: &PublicDraw) -> DrawFile {
        DrawFile::with(name, &serde_json::to_string(draw).unwrap())
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for DrawFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn verify_draw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anteroom-bench"))
        .arg("verify-draw")
        .args(args)
        .output()
        .expect("run the binary")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `ticket<TAB>place` lines after the header, as pairs.
fn rows(output: &Output) -> Vec<(u64, u64)> {
    let text = stdout(output);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ticket\tplace"), "{text}");
    lines
        .map(|line| {
            let (ticket, place) = line.split_once('\t').unwrap();
            (ticket.parse().unwrap(), place.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_drawn_file_lists_every_tickets_place() {
    let file = DrawFile::of("every", &drawn(500));
    let output = verify_draw(&["--draw", file.arg()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the seed matches the commitment"),
        "{}",
        stderr(&output)
    );
    let rows = rows(&output);
    assert_eq!(rows.len(), 500);
    let mut places = vec![false; 500];
    for (index, &(ticket, place)) in rows.iter().enumerate() {
        assert_eq!(ticket, index as u64 + 1);
        assert_eq!(Ok(place), draw::place(&seed(), 500, ticket));
        assert!(!std::mem::replace(&mut places[place as usize - 1], true));
    }

    // In order of place: the same pairs, sorted by place.
    let by_place = verify_draw(&["--draw", file.arg(), "--by-place"]);
    assert_eq!(by_place.status.code(), Some(0), "{}", stderr(&by_place));
    let mut sorted = rows.clone();
    sorted.sort_by_key(|&(_, place)| place);
    assert_eq!(self::rows(&by_place), sorted);
}

#[test]
fn one_ticket_gives_its_place_and_one_outside_is_refused() {
    let file = DrawFile::of("one", &drawn(10_000));
    let output = verify_draw(&["--draw", file.arg(), "--ticket", "9999"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    // A test vector of docs/draw.md.
    assert_eq!(stdout(&output), "ticket 9999: place 9171 of 10000\n");

    let outside = verify_draw(&["--draw", file.arg(), "--ticket", "10001"]);
    assert_eq!(outside.status.code(), Some(2));
    assert!(
        stderr(&outside).contains("ticket 10001 is not in the pre-queue (tickets 1 to 10000)"),
        "{}",
        stderr(&outside)
    );
}

#[test]
fn a_seed_that_does_not_match_the_commitment_exits_1() {
    let mut forged = drawn(100);
    forged.seed = Some(Seed::from_bytes([7; 32]).to_hex());
    let file = DrawFile::of("forged", &forged);
    let output = verify_draw(&["--draw", file.arg()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty(), "no places for a forged draw");
    assert!(
        stderr(&output).contains("THE SEED DOES NOT MATCH THE COMMITMENT"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_draw_that_cannot_be_checked_exits_2_and_says_why() {
    let pending = DrawFile::of(
        "pending",
        &PublicDraw::pending(
            "vaccini",
            &seed(),
            42,
            Some("2021-02-01T12:00:00+01:00".to_owned()),
        ),
    );
    let mut unknown = drawn(100);
    unknown.algorithm = "anteroom-draw-v2: something else".to_owned();
    let unknown = DrawFile::of("unknown", &unknown);
    let mut bad_seed = drawn(100);
    bad_seed.seed = Some("ABC".to_owned());
    let bad_seed = DrawFile::of("bad-seed", &bad_seed);
    let not_json = DrawFile::with("not-json", "<html>hello</html>");
    let missing = std::env::temp_dir().join("anteroom-verify-draw-no-such-file.json");

    for (draw, expected) in [
        (pending.arg(), "still pending"),
        (pending.arg(), "2021-02-01T12:00:00+01:00"),
        (unknown.arg(), "anteroom-draw-v2: something else"),
        (bad_seed.arg(), "seed: 3 characters, expected 64"),
        (not_json.arg(), "not the public draw JSON"),
        (missing.to_str().unwrap(), "no-such-file.json"),
        (
            "https://example.org/_anteroom/draw?room=vaccini",
            "only http://",
        ),
    ] {
        let output = verify_draw(&["--draw", draw]);
        assert_eq!(output.status.code(), Some(2), "{draw}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(expected),
            "{draw}: expected {expected:?} in {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty());
    }
}

#[test]
fn a_url_is_fetched_and_a_failed_answer_refused() {
    let json = serde_json::to_string(&drawn(1000)).unwrap();
    let ok = serve_once("200 OK", json);
    let output = verify_draw(&[
        "--draw",
        &format!("http://{ok}/_anteroom/draw?room=vaccini"),
        "--ticket",
        "500",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ticket 500: place 204 of 1000\n");

    let missing = serve_once("404 Not Found", "no such room".to_owned());
    let output = verify_draw(&["--draw", &format!("http://{missing}/_anteroom/draw?room=x")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("404 Not Found: no such room"),
        "{}",
        stderr(&output)
    );
}

/// A server on loopback that answers one request with `status` and `body`.
fn serve_once(status: &'static str, body: String) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut connection, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = connection.read(&mut buffer).unwrap();
            if read == 0 {
                return;
            }
            request.extend_from_slice(&buffer[..read]);
        }
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        connection.write_all(head.as_bytes()).unwrap();
        connection.write_all(body.as_bytes()).unwrap();
    });
    address
}
