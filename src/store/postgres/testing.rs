//! Test support: each test gets its own schema in the test database (random name, dropped at
//! the end), so tests run in parallel without seeing each other's rows. PostgreSQL being
//! unreachable fails the test with how to start it — nothing is skipped silently.

use super::PgOptions;

/// The database the tests use; `TAGWARDEN_TEST_DATABASE_URL` overrides it.
pub(crate) fn test_url() -> String {
    std::env::var("TAGWARDEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of its own for one test.
pub(crate) struct TestSchema {
    pub name: String,
}

async fn admin() -> tokio_postgres::Client {
    let url = test_url();
    let (client, conn) = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {url} ({}): the PostgreSQL store tests need it. \
             Start it (`pg_ctlcluster 15 main start`, or `docker run -p 5432:5432 -e \
             POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres`) or point \
             TAGWARDEN_TEST_DATABASE_URL at one",
            super::pg_reason(&e)
        ),
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

impl TestSchema {
    pub(crate) async fn create() -> TestSchema {
        let name = format!("tw_test_{:016x}", fastrand::u64(..));
        admin()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test schema {name}: {e}"));
        TestSchema { name }
    }

    /// A URL whose connections use this schema.
    pub(crate) fn url(&self) -> String {
        let base = test_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        // The application name lets the drop end this test's sessions first.
        format!(
            "{base}{sep}options=-csearch_path%3D{name}&application_name={name}",
            name = self.name
        )
    }

    pub(crate) fn options(&self) -> PgOptions {
        PgOptions::new(&self.url())
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop may run inside a runtime: drop the schema from a thread of its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                // The test's runtime may be blocked on this drop, so its pooled sessions
                // cannot finish what they queued (a rollback): end them, then drop.
                let admin = admin().await;
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                         WHERE application_name = $1",
                        &[&name],
                    )
                    .await
                    .ok()?;
                admin
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test schema {} was not dropped", self.name);
        }
    }
}
