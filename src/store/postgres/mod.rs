//! The PostgreSQL backend of the stores (`--database-url postgres://…`), for several server
//! replicas sharing one database: a connection pool (deadpool) with a statement timeout,
//! numbered migrations applied under an advisory lock (replicas starting at once apply each
//! migration once), and every store — the audit log (`audit`), the history store (`history`),
//! anomaly decisions (`anomalies`), virtual tags with tag rules and promotion plans
//! (`virtual_tags`) and shared-cost allocation rules (`allocation_rules`). SQLite stays the
//! embedded default.

pub(crate) mod allocation_rules;
pub(crate) mod anomalies;
pub(crate) mod audit;
pub(crate) mod history;
#[cfg(test)]
pub(crate) mod testing;
pub(crate) mod virtual_tags;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use super::StoreError;

/// Advisory-lock class of schema migrations (the second key is the schema's hash).
const MIGRATION_LOCK: i32 = 0x7467_0001;

/// How to reach the database.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PgOptions {
    /// `postgres://user[:password]@host[:port]/database[?options=…]`.
    pub url: String,
    /// Connections kept per store at most.
    pub pool_size: usize,
    /// The longest one statement may run (PostgreSQL's `statement_timeout`).
    pub statement_timeout: Duration,
}

impl PgOptions {
    /// Default pool and timeout settings for `url`.
    pub(crate) fn new(url: &str) -> PgOptions {
        PgOptions {
            url: url.to_string(),
            pool_size: 8,
            statement_timeout: Duration::from_secs(30),
        }
    }
}

/// Where a URL points, without its password: what error messages and logs may show.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("postgresql://{host}:{port}/{db}")
}

/// A connection pool to the database, checked by connecting once: a wrong URL or a server that
/// is down is reported at startup, with what to do, not at the first tool call.
pub(crate) async fn connect(options: &PgOptions) -> Result<Pool, StoreError> {
    let mut config = tokio_postgres::Config::from_str(&options.url).map_err(|e| StoreError::Open {
        path: "--database-url".into(),
        reason: format!(
            "{e}; expected postgres://user[:password]@host[:port]/database (TAGWARDEN_DATABASE_URL)"
        ),
    })?;
    let where_ = describe(&config);
    // Keep the URL's own options (a search_path, say) and add the statement timeout.
    let timeout = format!(
        "-c statement_timeout={}",
        options.statement_timeout.as_millis().max(1)
    );
    let combined = match config.get_options() {
        Some(own) if !own.is_empty() => format!("{own} {timeout}"),
        _ => timeout,
    };
    config.options(&combined);
    if config.get_application_name().is_none() {
        config.application_name("tagwarden");
    }
    config.connect_timeout(Duration::from_secs(10));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(30)))
        .create_timeout(Some(Duration::from_secs(10)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| StoreError::Open {
            path: where_.clone(),
            reason: e.to_string(),
        })?;
    drop(pool.get().await.map_err(|e| StoreError::Open {
        path: where_.clone(),
        reason: format!(
            "{}; is PostgreSQL running there and does the URL name an existing database and \
             user? (check --database-url / TAGWARDEN_DATABASE_URL)",
            pool_reason(&e)
        ),
    })?);
    Ok(pool)
}

/// The underlying reason of a pool failure (deadpool wraps the driver's error).
fn pool_reason(e: &deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_reason(e),
        other => other.to_string(),
    }
}

/// What the server said, or why the connection failed (the driver's Display alone is often
/// just "db error").
pub(crate) fn pg_reason(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(e) {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Sql(pg_reason(&e))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Sql(format!("no PostgreSQL connection: {}", pool_reason(&e)))
    }
}

/// Says which store failed, as the SQLite backend does; a refusal passes as is.
pub(crate) fn in_store<T>(store: &'static str, r: Result<T, StoreError>) -> Result<T, StoreError> {
    r.map_err(|e| match e {
        StoreError::Refused(why) => StoreError::Refused(why),
        e => StoreError::In {
            store,
            source: Box::new(e),
        },
    })
}

/// Brings one store's tables up to date: every pending migration of `store` in one transaction
/// holding an advisory lock, so two replicas starting at once apply each migration once (the
/// second waits, then finds nothing to do). Versions are per store in `schema_migrations`.
pub(crate) async fn migrate(
    pool: &Pool,
    store: &str,
    migrations: &[(i64, &str)],
) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let applied = apply_pending(&tx, store, migrations).await;
    // Explicitly, not on drop: the connection goes back to the pool at once, and a rollback
    // queued on drop would leave the session idle in a transaction until it is next used.
    match applied {
        Ok(()) => tx.commit().await?,
        Err(e) => {
            let _ = tx.rollback().await;
            return Err(e);
        }
    }
    Ok(())
}

async fn apply_pending(
    tx: &deadpool_postgres::Transaction<'_>,
    store: &str,
    migrations: &[(i64, &str)],
) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
        &[&MIGRATION_LOCK],
    )
    .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             store      TEXT   NOT NULL,
             version    BIGINT NOT NULL,
             applied_at TEXT   NOT NULL,
             PRIMARY KEY (store, version)
         )",
    )
    .await?;
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE store = $1",
            &[&store],
        )
        .await?
        .get(0);
    let known = migrations.iter().map(|(v, _)| *v).max().unwrap_or(0);
    if current > known {
        return Err(StoreError::TooNew {
            path: format!("the PostgreSQL {store} tables"),
            found: current,
            known,
        });
    }
    for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
        let failed = |e: tokio_postgres::Error| StoreError::Migrate {
            path: format!("the PostgreSQL {store} tables"),
            version: *version,
            reason: pg_reason(&e),
        };
        tx.batch_execute(sql).await.map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (store, version, applied_at) VALUES ($1, $2, $3)",
            &[&store, version, &chrono::Utc::now().to_rfc3339()],
        )
        .await
        .map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replicas_starting_at_once_migrate_once() {
        let schema = testing::TestSchema::create().await;
        let m: &[(i64, &str)] = &[
            (1, "CREATE TABLE a (x BIGINT)"),
            (2, "CREATE TABLE b (y BIGINT)"),
        ];
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let pool = connect(&schema.options()).await.unwrap();
            tasks.push(tokio::spawn(async move { migrate(&pool, "t", m).await }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let pool = connect(&schema.options()).await.unwrap();
        let client = pool.get().await.unwrap();
        let versions: Vec<i64> = client
            .query(
                "SELECT version FROM schema_migrations WHERE store = 't' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, vec![1, 2]);
        // An older binary refuses newer tables instead of misreading them.
        let err = migrate(&pool, "t", &m[..1]).await.unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::TooNew {
                    found: 2,
                    known: 1,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreachable_server_says_what_to_check() {
        let mut options = PgOptions::new("postgres://nobody:secret@127.0.0.1:1/none");
        options.statement_timeout = Duration::from_secs(1);
        let err = connect(&options).await.unwrap_err().to_string();
        assert!(err.contains("TAGWARDEN_DATABASE_URL"), "{err}");
        assert!(err.contains("127.0.0.1:1/none"), "{err}");
        assert!(!err.contains("secret"), "the password leaked: {err}");
        let err = connect(&PgOptions::new("mysql://x")).await.unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
    }
}
