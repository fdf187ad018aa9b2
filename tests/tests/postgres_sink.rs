//! The `postgres` sink against a real PostgreSQL: every test gets a private
//! database (`Postgres::database()`), makes its tables, and applies
//! buffered requests the way a worker does.

use std::sync::Arc;
use std::time::Duration;

use anteroom_config::{Buffer, Config};
use anteroom_store::BufferedRequest;
use anteroom_tests::{Postgres, TcpProxy, eventually};
use anteroom_worker::sink::postgres::PostgresSink;
use anteroom_worker::sink::{Applied, Sink};
use serde_json::{Value, json};

const BOOK: &str = "INSERT INTO bookings (slot_id, name, idempotency_key) VALUES ($1, $2, $3) \
                    RETURNING id, slot_id, name";
const BOOK_PARAMS: [&str; 3] = ["slot_id", "name", "$idempotency_key"];

#[tokio::test]
async fn a_booking_is_applied_and_its_returned_row_recorded() {
    let db = bookings_database().await;
    let sink = connect(buffer(db.url(), BOOK, &BOOK_PARAMS)).await;

    let applied = sink
        .apply("r-1", "k-1", &request(r#"{"slot_id": 3, "name": "Ada"}"#))
        .await;

    let body = final_json(&applied, 201);
    assert_eq!(body, json!([{ "id": 1, "slot_id": 3, "name": "Ada" }]));
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT status, body FROM anteroom_applied WHERE buffer = 'bookings' AND idempotency_key = 'k-1'",
            &[],
        )
        .await
        .expect("the result is recorded");
    assert_eq!(row.get::<_, i32>(0), 201);
    assert_eq!(
        serde_json::from_str::<Value>(row.get::<_, &str>(1)).unwrap(),
        body
    );
    let stored = client
        .query_one("SELECT name, idempotency_key FROM bookings", &[])
        .await
        .unwrap();
    assert_eq!(stored.get::<_, &str>(0), "Ada");
    assert_eq!(stored.get::<_, &str>(1), "k-1");
}

#[tokio::test]
async fn a_statement_without_rows_answers_the_count_it_touched() {
    let db = bookings_database().await;
    db.client()
        .await
        .batch_execute("INSERT INTO slots VALUES (1, 5, 0), (2, 5, 0)")
        .await
        .unwrap();
    let sink = connect(buffer(
        db.url(),
        "UPDATE slots SET capacity = capacity + $1",
        &["extra"],
    ))
    .await;

    let applied = sink.apply("r", "k", &request(r#"{"extra": 2}"#)).await;

    assert_eq!(final_json(&applied, 201), json!({ "rows_affected": 2 }));
}

#[tokio::test]
async fn applying_the_same_key_twice_runs_the_statement_once() {
    let db = bookings_database().await;
    let sink = connect(buffer(db.url(), BOOK, &BOOK_PARAMS)).await;

    let first = sink
        .apply("r-1", "k-1", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;
    // A replay after a lost reply: the record answers.
    let again = sink
        .apply("r-1", "k-1", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;

    final_json(&first, 201);
    assert_eq!(again, first);
    assert_eq!(count(&db, "bookings").await, 1);
    // The same key on another request (say, after its receipt expired) is
    // refused, and never shown the first request's answer.
    let reused = sink
        .apply("r-9", "k-1", &request(r#"{"slot_id": 1, "name": "Bob"}"#))
        .await;
    let refused = final_json(&reused, 422);
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|error| error.contains("different request")),
        "{refused}"
    );
    assert_eq!(count(&db, "bookings").await, 1);
    let other = sink
        .apply("r-2", "k-2", &request(r#"{"slot_id": 1, "name": "Bob"}"#))
        .await;
    final_json(&other, 201);
    assert_eq!(count(&db, "bookings").await, 2);
}

#[tokio::test]
async fn concurrent_applications_of_one_key_run_the_statement_once() {
    let db = bookings_database().await;
    // No unique key on bookings: only the sink stands between eight
    // workers racing on one request and eight bookings.
    db.client()
        .await
        .batch_execute("ALTER TABLE bookings DROP CONSTRAINT bookings_idempotency_key_key")
        .await
        .unwrap();
    let sink = Arc::new(connect(buffer(db.url(), BOOK, &BOOK_PARAMS).max_in_flight(8)).await);
    // Hold inserts back until all eight have looked for a recorded result
    // and found none: each then runs the statement, and all but one must
    // see that another committed first.
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE bookings IN SHARE MODE")
        .await
        .unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let sink = Arc::clone(&sink);
        tasks.spawn(async move {
            sink.apply("r-1", "k-1", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
                .await
        });
    }
    let watcher = db.client().await;
    eventually("all eight applications wait to insert", || {
        let watcher = &watcher;
        async move { sessions_waiting_for_a_lock(watcher).await == 8 }
    })
    .await;
    blocker.batch_execute("COMMIT").await.unwrap();
    let results = tasks.join_all().await;

    assert_eq!(count(&db, "bookings").await, 1);
    let first = &results[0];
    final_json(first, 201);
    for result in &results {
        assert_eq!(result, first);
    }
}

#[tokio::test]
async fn concurrent_bookings_never_overbook_a_slot() {
    let db = bookings_database().await;
    db.client()
        .await
        .batch_execute("INSERT INTO slots VALUES (1, 5, 0), (2, 5, 0), (3, 5, 0)")
        .await
        .unwrap();
    let statement = "WITH s AS (UPDATE slots SET booked = booked + 1 WHERE id = $1 RETURNING id) \
                     INSERT INTO bookings (slot_id, name, idempotency_key) \
                     SELECT id, $2, $3 FROM s RETURNING id";
    let sink = Arc::new(connect(buffer(db.url(), statement, &BOOK_PARAMS).max_in_flight(8)).await);

    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..30 {
        let sink = Arc::clone(&sink);
        tasks.spawn(async move {
            let body = json!({ "slot_id": index % 3 + 1, "name": format!("visitor {index}") });
            sink.apply(
                &format!("r-{index}"),
                &format!("k-{index}"),
                &request(&body.to_string()),
            )
            .await
        });
    }
    let results = tasks.join_all().await;

    let booked = results
        .iter()
        .filter(|result| matches!(result, Applied::Final { status: 201, .. }))
        .count();
    let refused: Vec<Value> = results
        .iter()
        .filter(|result| matches!(result, Applied::Final { status: 409, .. }))
        .map(|result| final_json(result, 409))
        .collect();
    assert_eq!(booked, 15, "{results:?}");
    assert_eq!(refused.len(), 15, "{results:?}");
    for body in &refused {
        assert_eq!(body["code"], "23514", "{body}");
        assert_eq!(body["constraint"], "slots_check", "{body}");
        assert!(body["error"].as_str().unwrap().contains("slots"), "{body}");
    }
    assert_eq!(count(&db, "bookings").await, 15);
    let slots = db
        .client()
        .await
        .query("SELECT booked, capacity FROM slots", &[])
        .await
        .unwrap();
    for slot in slots {
        assert_eq!(slot.get::<_, i32>(0), slot.get::<_, i32>(1));
    }
}

#[tokio::test]
async fn a_refusal_is_recorded_and_stays_the_answer() {
    let db = bookings_database().await;
    let sink = connect(buffer(db.url(), BOOK, &BOOK_PARAMS)).await;
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO bookings (slot_id, name, idempotency_key) VALUES (1, 'Ada', 'k-1')",
        )
        .await
        .unwrap();

    // Another request reusing a booking's key collides with it.
    let refused = sink
        .apply("r-9", "k-1", &request(r#"{"slot_id": 2, "name": "Bob"}"#))
        .await;

    let body = final_json(&refused, 409);
    assert_eq!(body["code"], "23505");
    assert_eq!(body["constraint"], "bookings_idempotency_key_key");
    // The answer was recorded with the refusal: with the obstacle gone, a
    // retry of the same request still gets it.
    client.batch_execute("DELETE FROM bookings").await.unwrap();
    let again = sink
        .apply("r-9", "k-1", &request(r#"{"slot_id": 2, "name": "Bob"}"#))
        .await;
    assert_eq!(again, refused);
    assert_eq!(count(&db, "bookings").await, 0);
}

#[tokio::test]
async fn a_request_that_cannot_give_a_parameter_is_a_final_422() {
    let db = bookings_database().await;
    let sink = connect(buffer(db.url(), BOOK, &BOOK_PARAMS)).await;

    let missing = sink
        .apply("r-1", "k-1", &request(r#"{"slot_id": 1}"#))
        .await;
    let wrong_type = sink
        .apply(
            "r-2",
            "k-2",
            &request(r#"{"slot_id": "first", "name": "Ada"}"#),
        )
        .await;
    let not_json = sink
        .apply("r-3", "k-3", &request("slot_id=1&name=Ada"))
        .await;

    let missing = final_json(&missing, 422);
    assert_eq!(missing["param"], "name");
    assert_eq!(missing["position"], 2);
    assert!(
        missing["error"].as_str().unwrap().contains("\"name\""),
        "{missing}"
    );
    let wrong_type = final_json(&wrong_type, 422);
    assert_eq!(wrong_type["param"], "slot_id");
    assert!(
        wrong_type["error"].as_str().unwrap().contains("integer"),
        "{wrong_type}"
    );
    let not_json = final_json(&not_json, 422);
    assert!(
        not_json["error"].as_str().unwrap().contains("not JSON"),
        "{not_json}"
    );
    assert_eq!(count(&db, "bookings").await, 0);
    // Recorded like any answer: the same request keeps it.
    let again = sink
        .apply("r-1", "k-1", &request(r#"{"slot_id": 1}"#))
        .await;
    assert_eq!(final_json(&again, 422), missing);
    assert_eq!(count(&db, "bookings").await, 0);
}

#[tokio::test]
async fn data_the_database_refuses_is_a_final_422() {
    let db = bookings_database().await;
    let sink = connect(buffer(
        db.url(),
        "INSERT INTO prices (amount) VALUES ($1::text::numeric) RETURNING amount",
        &["amount"],
    ))
    .await;

    let refused = sink
        .apply("r", "k", &request(r#"{"amount": "twelve"}"#))
        .await;

    let body = final_json(&refused, 422);
    assert_eq!(body["code"], "22P02", "{body}");
    assert_eq!(count(&db, "prices").await, 0);
}

#[tokio::test]
async fn parameters_of_every_supported_type_round_trip() {
    let db = bookings_database().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TYPE mood AS ENUM ('calm', 'eager');
             CREATE DOMAIN seats AS int CHECK (VALUE > 0);
             CREATE TABLE kinds (
                 flag bool, small int2, seats seats, big int8, ratio float4, score float8,
                 label varchar(20), code char(3), mood mood, id uuid, doc jsonb, raw json,
                 whole jsonb, missing text
             )",
        )
        .await
        .unwrap();
    let params = [
        "flag", "small", "seats", "big", "ratio", "score", "label", "code", "mood", "id", "doc",
        "raw", "$body", "missing",
    ];
    let statement = "INSERT INTO kinds VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                     $12, $13, $14) RETURNING *";
    let sink = connect(buffer(db.url(), statement, &params)).await;
    let body = json!({
        "flag": true, "small": "-12", "seats": 40, "big": 9_007_199_254_740_993_i64,
        "ratio": 0.5, "score": "2.25", "label": 17, "code": "abc", "mood": "eager",
        "id": "67E55044-10B1-426F-9247-BB680E5FE0C8", "doc": {"a": [1, "two"]},
        "raw": [true], "missing": null,
    });

    let applied = sink.apply("r", "k", &request(&body.to_string())).await;

    assert_eq!(
        final_json(&applied, 201),
        json!([{
            "flag": true, "small": -12, "seats": 40, "big": 9_007_199_254_740_993_i64,
            "ratio": 0.5, "score": 2.25, "label": "17", "code": "abc", "mood": "eager",
            "id": "67e55044-10b1-426f-9247-bb680e5fe0c8", "doc": {"a": [1, "two"]},
            "raw": [true], "whole": body, "missing": null,
        }])
    );
}

#[tokio::test]
async fn returned_columns_of_common_types_are_json() {
    let db = bookings_database().await;
    let statement = "SELECT $1::text AS receipt, 12.50::numeric AS price, \
                     -0.000123::numeric AS tiny, 123456789012345678901234567890::numeric AS huge, \
                     'NaN'::numeric AS nan, '2024-02-29 13:45:06.25+00'::timestamptz AS at, \
                     '1999-12-31 23:59:59'::timestamp AS local, '2024-02-29'::date AS day, \
                     'fe0b7dcb-1b1e-4a52-9a86-3f6f1b1fb0e7'::uuid AS id, 'x'::name AS name, \
                     NULL::int AS nothing, '1 day'::interval AS other";
    let sink = connect(buffer(db.url(), statement, &["$receipt"])).await;

    let applied = sink.apply("r-7", "k", &request("")).await;

    assert_eq!(
        final_json(&applied, 201),
        json!([{
            "receipt": "r-7", "price": "12.50", "tiny": "-0.000123",
            "huge": "123456789012345678901234567890", "nan": "NaN",
            "at": "2024-02-29T13:45:06.25Z", "local": "1999-12-31T23:59:59",
            "day": "2024-02-29", "id": "fe0b7dcb-1b1e-4a52-9a86-3f6f1b1fb0e7", "name": "x",
            "nothing": null, "other": null,
        }])
    );
}

#[tokio::test]
async fn connect_refuses_a_statement_whose_parameters_do_not_match_params() {
    let db = bookings_database().await;

    let error = PostgresSink::connect(&buffer(db.url(), BOOK, &["slot_id", "name"]).build())
        .await
        .err()
        .expect("two params for three parameters is refused")
        .to_string();

    assert!(error.contains("\"bookings\""), "{error}");
    assert!(error.contains("3 parameter"), "{error}");
    assert!(error.contains("params lists 2"), "{error}");
}

#[tokio::test]
async fn connect_refuses_a_parameter_type_json_cannot_give_and_names_the_cast() {
    let db = bookings_database().await;
    let statement = "INSERT INTO prices (amount) VALUES ($1)";

    let error = PostgresSink::connect(&buffer(db.url(), statement, &["amount"]).build())
        .await
        .err()
        .expect("a numeric parameter is refused")
        .to_string();

    assert!(error.contains("\"bookings\""), "{error}");
    assert!(
        error.contains(
            "parameter $1 has type numeric; cast it in the statement, like $1::text::numeric"
        ),
        "{error}"
    );
    // With the cast it works, and the numeric comes back with its digits.
    let statement = "INSERT INTO prices (amount) VALUES ($1::text::numeric) RETURNING amount";
    let sink = connect(buffer(db.url(), statement, &["amount"])).await;
    let applied = sink
        .apply("r", "k", &request(r#"{"amount": "12.50"}"#))
        .await;
    assert_eq!(final_json(&applied, 201), json!([{ "amount": "12.50" }]));
}

#[tokio::test]
async fn connect_refuses_a_statement_the_database_rejects() {
    let db = bookings_database().await;

    let error =
        PostgresSink::connect(&buffer(db.url(), "INSERT INTO nowhere VALUES ($1)", &["x"]).build())
            .await
            .err()
            .expect("an unknown table is refused")
            .to_string();

    assert!(error.contains("\"bookings\""), "{error}");
    assert!(error.contains("nowhere"), "{error}");
}

#[tokio::test]
async fn a_database_error_an_operator_can_fix_is_retried_not_lost() {
    let db = bookings_database().await;
    let sink = connect(buffer(db.url(), BOOK, &BOOK_PARAMS)).await;
    let client = db.client().await;
    client
        .batch_execute("ALTER TABLE bookings RENAME TO bookings_moved")
        .await
        .unwrap();

    let broken = sink
        .apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;

    let Applied::Transient { why } = broken else {
        panic!("a missing table is transient: {broken:?}");
    };
    assert!(why.contains("bookings"), "{why}");
    client
        .batch_execute("ALTER TABLE bookings_moved RENAME TO bookings")
        .await
        .unwrap();
    let fixed = sink
        .apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;
    final_json(&fixed, 201);
    assert_eq!(count(&db, "bookings").await, 1);
}

#[tokio::test]
async fn an_unreachable_database_is_transient_and_the_retry_applies_once() {
    let db = bookings_database().await;
    let mut proxy = TcpProxy::start(db.address().await).await;
    let through_proxy = db.url_at(&format!("127.0.0.1:{}", proxy.port));
    let sink = connect(buffer(&through_proxy, BOOK, &BOOK_PARAMS)).await;

    proxy.close();
    let unreachable = sink
        .apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;

    assert!(
        matches!(unreachable, Applied::Transient { .. }),
        "{unreachable:?}"
    );
    proxy.reopen().await;
    let applied = sink
        .apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;
    final_json(&applied, 201);
    assert_eq!(count(&db, "bookings").await, 1);
}

#[tokio::test]
async fn an_unresponsive_database_is_transient_within_the_sink_timeout() {
    let db = bookings_database().await;
    let proxy = TcpProxy::start(db.address().await).await;
    let through_proxy = db.url_at(&format!("127.0.0.1:{}", proxy.port));
    let sink = connect(buffer(&through_proxy, BOOK, &BOOK_PARAMS).sink_timeout_seconds(1)).await;

    proxy.stall();
    // The sink must give up by itself; the outer bound only turns a hang
    // into a failure.
    let stalled = tokio::time::timeout(
        Duration::from_secs(60),
        sink.apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#)),
    )
    .await
    .expect("the sink gives up on its own");

    assert_eq!(
        stalled,
        Applied::Transient {
            why: "postgres: timed out after 1s".to_owned()
        }
    );
    // Whatever the abandoned attempt sent is rolled back; the retry applies
    // the request once.
    proxy.resume();
    let mut applied = sink
        .apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
        .await;
    for _ in 0..5 {
        if !matches!(applied, Applied::Transient { .. }) {
            break;
        }
        applied = sink
            .apply("r", "k", &request(r#"{"slot_id": 1, "name": "Ada"}"#))
            .await;
    }
    final_json(&applied, 201);
    assert_eq!(count(&db, "bookings").await, 1);
}

// ---------------------------------------------------------------- helpers

/// A private database with the booking schema of the README's example.
async fn bookings_database() -> Postgres {
    let db = Postgres::database().await;
    db.client()
        .await
        .batch_execute(
            "CREATE TABLE slots (id int PRIMARY KEY, capacity int NOT NULL, booked int NOT NULL,
                                 CHECK (booked <= capacity));
             CREATE TABLE bookings (id serial PRIMARY KEY, slot_id int NOT NULL, name text NOT NULL,
                                    idempotency_key text UNIQUE);
             CREATE TABLE prices (amount numeric NOT NULL)",
        )
        .await
        .expect("create the booking schema");
    db
}

async fn connect(buffer: BufferSpec) -> PostgresSink {
    PostgresSink::connect(&buffer.build())
        .await
        .unwrap_or_else(|error| panic!("the sink connects: {error}"))
}

async fn count(db: &Postgres, table: &str) -> i64 {
    db.client()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .expect("count rows")
        .get(0)
}

async fn sessions_waiting_for_a_lock(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            &[],
        )
        .await
        .expect("count waiting sessions")
        .get(0)
}

fn request(body: &str) -> BufferedRequest {
    BufferedRequest {
        method: "POST".into(),
        target: "/api/bookings".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        pass: "pass-1".into(),
        client: "127.0.0.1".into(),
        received_at: 0,
        client_idempotency_key: None,
        body: body.as_bytes().to_vec(),
    }
}

/// The body of a `Final` answer with `status`, as JSON.
fn final_json(applied: &Applied, status: u16) -> Value {
    match applied {
        Applied::Final { status: got, body } if *got == status => {
            serde_json::from_str(body).unwrap_or_else(|error| panic!("{error}: {body}"))
        }
        other => panic!("expected a final {status}, got {other:?}"),
    }
}

/// A `[[buffer]]` named "bookings" with the postgres sink, as a config file
/// has it.
struct BufferSpec {
    url: String,
    statement: String,
    params: Vec<String>,
    max_in_flight: u32,
    sink_timeout_seconds: u64,
}

fn buffer(url: &str, statement: &str, params: &[&str]) -> BufferSpec {
    BufferSpec {
        url: url.to_owned(),
        statement: statement.to_owned(),
        params: params.iter().map(|param| param.to_string()).collect(),
        max_in_flight: 2,
        sink_timeout_seconds: 10,
    }
}

impl BufferSpec {
    fn max_in_flight(mut self, max_in_flight: u32) -> Self {
        self.max_in_flight = max_in_flight;
        self
    }

    fn sink_timeout_seconds(mut self, seconds: u64) -> Self {
        self.sink_timeout_seconds = seconds;
        self
    }

    fn build(&self) -> Buffer {
        let toml = format!(
            "upstream = \"http://127.0.0.1:1\"\n\n[store]\nbackend = \"memory\"\n\n\
             [[room]]\nname = \"clinic\"\npaths = [\"/api/\"]\ncapacity = 1\nadmit_per_minute = 60\n\n\
             [[buffer]]\nname = \"bookings\"\nroom = \"clinic\"\npath = \"/api/bookings\"\n\
             drain_per_second = 100\nmax_in_flight = {}\nsink = \"postgres\"\npostgres_url = {:?}\n\
             statement = {:?}\nparams = {:?}\ncontent_types = [\"application/json\"]\n\
             sink_timeout_seconds = {}\n",
            self.max_in_flight, self.url, self.statement, self.params, self.sink_timeout_seconds
        );
        let config = Config::from_toml(&toml, |_| None)
            .unwrap_or_else(|error| panic!("test buffer config is valid: {error}\n{toml}"));
        config.buffers.into_iter().next().expect("one buffer")
    }
}
