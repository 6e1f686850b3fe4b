//! Throwaway PostgreSQL databases on the tests' server (`IAAS_TEST_POSTGRES_URL`, else
//! 127.0.0.1:5432 with trust auth, as `scripts/test` provides).

/// A database of its own on the tests' PostgreSQL (`IAAS_TEST_POSTGRES_URL`), dropped with it.
pub struct Database {
    admin: sqlx::PgConnection,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn create(tag: &str) -> Database {
        let admin_url = std::env::var("IAAS_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.expect("PostgreSQL for the tests");
        let name = format!("iaas_{tag}_{}", std::process::id());
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
        Database { admin, name, url }
    }

    pub async fn drop(mut self) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut self.admin).await;
    }
}
