//! The `postgres` sink: runs the buffer's `statement` with parameters taken
//! from the JSON body, exactly once per idempotency key.
//!
//! Invariant: a request's effect and the record of its result commit in one
//! transaction. `anteroom_applied` holds one row per `(buffer,
//! idempotency_key)`; a key found there is answered from the row without
//! running the statement again, so a retry after a lost reply, a reclaimed
//! lease or two workers racing on the same request applies it once.
//!
//! Outcomes: the statement ran → `Final` 201 (the `RETURNING` rows, or
//! `{"rows_affected":N}`); an integrity constraint refused it (SQLSTATE
//! class 23) → `Final` 409; the body cannot give the parameters, or the
//! database refused the data (class 22) → `Final` 422. Everything else —
//! unreachable, timeouts, serialization failures, deadlocks, even a syntax
//! or permission error an operator can fix — is `Transient`: retried, then
//! dead-lettered, never silently lost.

use std::time::Duration;

use anteroom_config::Buffer;
use anteroom_store::{BufferedRequest, ParamSource};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use serde_json::{Value, json};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row, Statement};

use super::{Applied, Sink, truncate_result};
use columns::ColumnValue;
use params::{ParamKind, ParamProblem, SqlParam, extract};

mod columns;
mod params;

/// Applies a buffer's requests to PostgreSQL over a pool of
/// `max_in_flight` connections: one per request the drainer may have in
/// flight, so a request never waits for a connection behind another.
pub struct PostgresSink {
    buffer: String,
    pool: Pool,
    statement: String,
    sources: Vec<ParamSource>,
    timeout: Duration,
}

/// A postgres sink that cannot start: the worker refuses to start with it.
#[derive(Debug, thiserror::Error)]
#[error("buffer {buffer:?}: postgres sink: {problem}")]
pub struct ConnectError {
    pub buffer: String,
    #[source]
    pub problem: ConnectProblem,
}

/// What [`ConnectError`] ran into.
#[derive(Debug, thiserror::Error)]
pub enum ConnectProblem {
    #[error("the buffer's sink is not postgres")]
    NotPostgres,
    #[error("postgres_url: {0}")]
    Url(#[source] tokio_postgres::Error),
    #[error("{0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    #[error("cannot connect: {0}")]
    Connect(#[source] deadpool_postgres::PoolError),
    #[error("cannot create anteroom_applied: {}", describe(.0))]
    CreateApplied(#[source] tokio_postgres::Error),
    /// The database refused the statement (syntax, an unknown table).
    #[error("statement: {}", describe(.0))]
    Prepare(#[source] tokio_postgres::Error),
    #[error("the statement has {found} parameter(s) ($1..${found}) but params lists {listed}")]
    ParamCount { found: usize, listed: usize },
    #[error(transparent)]
    UnsupportedType(#[from] UnsupportedType),
}

/// A statement parameter of a type no JSON value converts to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "parameter ${position} has type {type_name}; cast it in the statement, like \
     ${position}::text::{type_name}"
)]
pub struct UnsupportedType {
    /// 1-based `$n`.
    pub position: usize,
    pub type_name: String,
}

/// Why one attempt failed in a way that may pass: the request is retried.
/// The message is the attempt's `why` (logged, and a dead letter's reason).
#[derive(Debug, thiserror::Error)]
enum ApplyError {
    #[error("postgres: {0}")]
    Pool(#[source] deadpool_postgres::PoolError),
    #[error("postgres: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("postgres: the concurrent application of this key vanished")]
    RecordVanished,
    #[error("postgres: anteroom_applied holds status {0}")]
    RecordedStatus(i32),
    /// The schema changed under a running worker.
    #[error("postgres: the statement now has {found} parameters but params lists {listed}")]
    ParamCount { found: usize, listed: usize },
    #[error("postgres: {0}")]
    UnsupportedType(#[source] UnsupportedType),
}

/// One row per request applied, kept so that applying it again answers the
/// same. Created by the first worker that connects.
const CREATE_APPLIED: &str = "CREATE TABLE IF NOT EXISTS anteroom_applied (
    buffer text NOT NULL,
    idempotency_key text NOT NULL,
    status int NOT NULL,
    body text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    fingerprint text,
    PRIMARY KEY (buffer, idempotency_key)
)";
const SELECT_APPLIED: &str = "SELECT status, body, fingerprint FROM anteroom_applied \
     WHERE buffer = $1 AND idempotency_key = $2";
const INSERT_APPLIED: &str = "INSERT INTO anteroom_applied (buffer, idempotency_key, status, body, fingerprint) \
     VALUES ($1, $2, $3, $4, $5)";
/// Deferred constraints are checked when the statement ends rather than at
/// COMMIT, so that their violations are a 409 like any other.
const BEFORE_STATEMENT: &str = "SAVEPOINT anteroom_statement; SET CONSTRAINTS ALL IMMEDIATE";
const UNDO_STATEMENT: &str = "ROLLBACK TO SAVEPOINT anteroom_statement";

const UNIQUE_VIOLATION: &str = "23505";
const DUPLICATE_TABLE: &str = "42P07";

impl PostgresSink {
    /// Connects to `postgres_url`, creates `anteroom_applied` if missing and
    /// checks the statement against the database: one parameter per entry
    /// of `params`, each of a type a JSON value converts to. An error names
    /// the buffer; the worker refuses to start with it.
    pub async fn connect(buffer: &Buffer) -> Result<PostgresSink, ConnectError> {
        PostgresSink::set_up(buffer)
            .await
            .map_err(|problem| ConnectError {
                buffer: buffer.name.clone(),
                problem,
            })
    }

    async fn set_up(buffer: &Buffer) -> Result<PostgresSink, ConnectProblem> {
        let anteroom_config::Sink::Postgres {
            url,
            statement,
            params,
        } = &buffer.sink
        else {
            return Err(ConnectProblem::NotPostgres);
        };
        let timeout = buffer.sink_timeout;
        let mut pg_config: tokio_postgres::Config = url.parse().map_err(ConnectProblem::Url)?;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(timeout);
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("anteroom-worker");
        }
        // The server gives up on a statement when we do, rather than keep
        // running (and holding locks) for an answer nobody waits for. Options
        // in the URL come after ours, so an explicit setting there wins.
        let options = format!(
            "-c statement_timeout={} {}",
            timeout.as_millis(),
            pg_config.get_options().unwrap_or_default()
        );
        pg_config.options(options.trim_end());
        let manager = Manager::from_config(
            pg_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(buffer.max_in_flight.get() as usize)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(timeout))
            .create_timeout(Some(timeout))
            .recycle_timeout(Some(timeout))
            .build()
            .map_err(ConnectProblem::Pool)?;

        let client = pool.get().await.map_err(ConnectProblem::Connect)?;
        if let Err(error) = client.batch_execute(CREATE_APPLIED).await {
            // Workers starting together race on CREATE TABLE IF NOT EXISTS;
            // the loser sees a duplicate and the table is there.
            if !matches!(sqlstate(&error), Some(UNIQUE_VIOLATION | DUPLICATE_TABLE)) {
                return Err(ConnectProblem::CreateApplied(error));
            }
        }
        let prepared = client
            .prepare(statement)
            .await
            .map_err(ConnectProblem::Prepare)?;
        check_statement(&prepared, params)?;

        tracing::info!(
            buffer = %buffer.name,
            connections = buffer.max_in_flight.get(),
            "postgres sink ready"
        );
        Ok(PostgresSink {
            buffer: buffer.name.clone(),
            pool,
            statement: statement.clone(),
            sources: params
                .iter()
                .map(|param| ParamSource::parse(param))
                .collect(),
            timeout,
        })
    }

    /// One attempt, in one transaction. `Err` is a transient failure.
    async fn apply_once(
        &self,
        receipt: &str,
        idempotency_key: &str,
        request: &BufferedRequest,
    ) -> Result<(u16, String), ApplyError> {
        let mut client = self.pool.get().await.map_err(ApplyError::Pool)?;
        let transaction = client.transaction().await?;
        let fingerprint = request.fingerprint();
        let (select_applied, insert_applied, statement) = tokio::try_join!(
            transaction.prepare_cached(SELECT_APPLIED),
            transaction.prepare_cached(INSERT_APPLIED),
            transaction.prepare_cached(&self.statement),
        )?;

        if let Some(row) = transaction
            .query_opt(&select_applied, &[&self.buffer, &idempotency_key])
            .await?
        {
            let _ = transaction.rollback().await;
            return recorded(&row, &fingerprint);
        }

        let outcome = match self.params(&statement, receipt, idempotency_key, &request.body)? {
            Err(problem) => (422, problem.body()),
            Ok(params) => {
                transaction.batch_execute(BEFORE_STATEMENT).await?;
                match run(&transaction, &statement, &params).await {
                    Ok(body) => (201, body),
                    Err(error) => {
                        let refused = refusal(&error).ok_or_else(|| ApplyError::Database(error))?;
                        transaction.batch_execute(UNDO_STATEMENT).await?;
                        refused
                    }
                }
            }
        };
        let (status, body) = (outcome.0, truncate_result(outcome.1));

        let inserted = transaction
            .execute(
                &insert_applied,
                &[
                    &self.buffer,
                    &idempotency_key,
                    &i32::from(status),
                    &body,
                    &fingerprint,
                ],
            )
            .await;
        match inserted {
            Ok(_) => {
                transaction.commit().await?;
                Ok((status, body))
            }
            // Another worker applied the same request meanwhile and
            // committed first: ours is undone, theirs is the answer.
            Err(error) if sqlstate(&error) == Some(UNIQUE_VIOLATION) => {
                transaction.rollback().await?;
                let row = client
                    .query_opt(&select_applied, &[&self.buffer, &idempotency_key])
                    .await?
                    .ok_or(ApplyError::RecordVanished)?;
                recorded(&row, &fingerprint)
            }
            Err(error) => Err(ApplyError::Database(error)),
        }
    }

    /// The statement's parameters from the request: `Ok(Err(..))` when the
    /// request cannot give them (a final 422), `Err` when the statement now
    /// has a type we cannot convert to (the schema changed; transient).
    fn params(
        &self,
        statement: &Statement,
        receipt: &str,
        idempotency_key: &str,
        body: &[u8],
    ) -> Result<Result<Vec<SqlParam>, ParamProblem>, ApplyError> {
        let types = statement.params();
        if types.len() != self.sources.len() {
            return Err(ApplyError::ParamCount {
                found: types.len(),
                listed: self.sources.len(),
            });
        }
        let kinds = types
            .iter()
            .enumerate()
            .map(|(index, ty)| ParamKind::of(ty).ok_or_else(|| unsupported_type(index + 1, ty)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApplyError::UnsupportedType)?;
        Ok(extract(
            &self.sources,
            &kinds,
            receipt,
            idempotency_key,
            body,
        ))
    }
}

#[async_trait::async_trait]
impl Sink for PostgresSink {
    async fn apply(
        &self,
        receipt: &str,
        idempotency_key: &str,
        request: &BufferedRequest,
    ) -> Applied {
        let attempt = self.apply_once(receipt, idempotency_key, request);
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok((status, body))) => Applied::Final { status, body },
            Ok(Err(error)) => Applied::Transient {
                why: error.to_string(),
            },
            Err(_) => Applied::Transient {
                why: format!("postgres: timed out after {:?}", self.timeout),
            },
        }
    }
}

fn check_statement(statement: &Statement, params: &[String]) -> Result<(), ConnectProblem> {
    let types = statement.params();
    if types.len() != params.len() {
        return Err(ConnectProblem::ParamCount {
            found: types.len(),
            listed: params.len(),
        });
    }
    for (index, ty) in types.iter().enumerate() {
        if ParamKind::of(ty).is_none() {
            return Err(unsupported_type(index + 1, ty).into());
        }
    }
    Ok(())
}

fn unsupported_type(position: usize, ty: &Type) -> UnsupportedType {
    UnsupportedType {
        position,
        type_name: ty.name().to_owned(),
    }
}

/// Runs the statement: its rows as JSON objects when it returns rows, else
/// the count of rows it touched.
async fn run(
    transaction: &deadpool_postgres::Transaction<'_>,
    statement: &Statement,
    params: &[SqlParam],
) -> Result<String, tokio_postgres::Error> {
    let params: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|param| param as &(dyn ToSql + Sync))
        .collect();
    if statement.columns().is_empty() {
        let rows_affected = transaction.execute(statement, &params).await?;
        return Ok(json!({ "rows_affected": rows_affected }).to_string());
    }
    let rows = transaction.query(statement, &params).await?;
    let rows: Vec<Value> = rows.iter().map(row_json).collect::<Result<_, _>>()?;
    Ok(Value::Array(rows).to_string())
}

fn row_json(row: &Row) -> Result<Value, tokio_postgres::Error> {
    let mut object = serde_json::Map::new();
    for (index, column) in row.columns().iter().enumerate() {
        let ColumnValue(value) = row.try_get(index)?;
        object.insert(column.name().to_owned(), value);
    }
    Ok(Value::Object(object))
}

/// A database refusal that is the request's fault, as the final answer
/// recorded for it; `None` for anything that may pass.
fn refusal(error: &tokio_postgres::Error) -> Option<(u16, String)> {
    let db = error.as_db_error()?;
    let code = db.code().code();
    let status = match &code[..2] {
        // Integrity constraints: unique, check, foreign key, not null,
        // exclusion. The slot is full, the booking exists.
        "23" => 409,
        // Data exceptions: the request's values do not fit (too long, out
        // of range, not a number where the statement casts to one).
        "22" => 422,
        _ => return None,
    };
    let body = json!({
        "error": db.message(),
        "constraint": db.constraint(),
        "code": code,
    });
    Some((status, body.to_string()))
}

/// The recorded answer for a key, if it was recorded for this request. The
/// same key on a different request (the key came back after its receipt
/// expired, or another client reused it) gets a final 422, never the other
/// request's answer.
fn recorded(row: &Row, fingerprint: &str) -> Result<(u16, String), ApplyError> {
    let recorded_for: Option<String> = row.try_get(2)?;
    if recorded_for.is_some_and(|recorded_for| recorded_for != fingerprint) {
        let body = serde_json::json!({
            "error": "this Idempotency-Key was already used for a different request"
        });
        return Ok((422, body.to_string()));
    }
    let status: i32 = row.try_get(0)?;
    let body: String = row.try_get(1)?;
    let status = u16::try_from(status).map_err(|_| ApplyError::RecordedStatus(status))?;
    Ok((status, body))
}

fn sqlstate(error: &tokio_postgres::Error) -> Option<&str> {
    error.code().map(|state| state.code())
}

fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unsupported_type_names_the_cast() {
        assert_eq!(
            unsupported_type(3, &Type::NUMERIC).to_string(),
            "parameter $3 has type numeric; cast it in the statement, like $3::text::numeric"
        );
    }
}
