//! Versioned migrations of the PostgreSQL schema, applied under an
//! advisory lock so workers starting together migrate once.

use super::*;

/// The schema, one entry per version (never edit a released one).
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema_v1.sql"),
    include_str!("schema_v2.sql"),
    include_str!("schema_v3.sql"),
    include_str!("schema_v4.sql"),
    include_str!("schema_v5.sql"),
    include_str!("schema_v6.sql"),
    include_str!("schema_v7.sql"),
    include_str!("schema_v8.sql"),
    include_str!("schema_v9.sql"),
    include_str!("schema_v10.sql"),
    include_str!("schema_v11.sql"),
];

/// The schema version this build writes.
pub const PG_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock held while migrating (any fixed number).
pub(super) const MIGRATION_LOCK: i64 = 0x6972_6f6e_746f_6b6e; // "irontokn"

pub(super) fn migrate(link: &mut Link, storage_timeout: Duration) -> Result<()> {
    let step = || Instant::now() + storage_timeout.max(Duration::from_secs(60));
    link.batch_execute(
        step(),
        &format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"),
    )?;
    let result = (|| -> Result<()> {
        link.batch_execute(
            step(),
            "CREATE TABLE IF NOT EXISTS irontoken_schema (version bigint NOT NULL)",
        )?;
        let s = link.prepare(
            step(),
            "SELECT coalesce(max(version), 0) FROM irontoken_schema",
        )?;
        let current: i64 = link
            .query_opt(step(), &s, &[])?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        if current > PG_SCHEMA_VERSION {
            return Err(Error::new(
                ErrorKind::SchemaTooNew,
                format!(
                    "database schema version {current} is newer than this irontoken supports ({PG_SCHEMA_VERSION})"
                ),
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
            link.batch_execute(step(), "BEGIN")?;
            let applied = link.batch_execute(step(), sql).and_then(|()| {
                link.batch_execute(
                    step(),
                    &format!("INSERT INTO irontoken_schema (version) VALUES ({})", i + 1),
                )
            });
            match applied {
                Ok(()) => link.batch_execute(step(), "COMMIT")?,
                Err(e) => {
                    let _ = link.batch_execute(step(), "ROLLBACK");
                    return Err(e);
                }
            }
        }
        Ok(())
    })();
    let unlocked = link.batch_execute(
        step(),
        &format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"),
    );
    result?;
    unlocked?;
    Ok(())
}
