//! Migrations embedded in the binary, run by sqlx's [`Migrator`].
//!
//! What `sqlx::migrate!` does, without its proc-macro (and the second copy
//! of sqlx, SQLite and tokio it compiles for the host): each file is given
//! as its name and text (`include_str!`); the version and description come
//! from the name as sqlx reads them (`<version>_<description>.sql`,
//! underscores shown as spaces), and the checksum is sqlx's own (SHA-384 of
//! the text), so stores migrated by either agree.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, SqlSafeStr as _};

/// A migrator of `files` (name, SQL) that takes versions applied by
/// another migrator of the same database as no error: the mapping table
/// (100..199) and the hub's queue (200..299) share one `_sqlx_migrations`
/// table. Panics on a name that is not `<version>_<description>.sql`: the
/// names are the crate's own, fixed at build time.
pub fn embedded_migrator(files: &[(&'static str, &'static str)]) -> Migrator {
    let migrations = files
        .iter()
        .map(|&(name, sql)| {
            let (version, rest) = parse_name(name)
                .unwrap_or_else(|| panic!("migration file {name:?}: not <version>_<name>.sql"));
            Migration::new(
                version,
                Cow::Owned(rest.replace('_', " ")),
                MigrationType::Simple,
                AssertSqlSafe(sql).into_sql_str(),
                sql.starts_with("-- no-transaction"),
            )
        })
        .collect();
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.set_ignore_missing(true);
    migrator
}

/// `100_identities.sql` → (100, "identities").
fn parse_name(name: &str) -> Option<(i64, &str)> {
    let (version, rest) = name.split_once('_')?;
    Some((version.parse().ok()?, rest.strip_suffix(".sql")?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_descriptions_and_checksums_are_sqlx_ones() {
        let m = embedded_migrator(&[
            ("101_rooms.sql", "CREATE TABLE b (x);"),
            ("100_identities_and_more.sql", "CREATE TABLE a (x);"),
        ]);
        let got: Vec<(i64, &str)> = m
            .iter()
            .map(|m| (m.version, m.description.as_ref()))
            .collect();
        assert_eq!(got, [(100, "identities and more"), (101, "rooms")]);
        // sqlx's checksum: SHA-384 of the text.
        let first = m.iter().next().unwrap();
        assert_eq!(
            first.checksum.as_ref(),
            sqlx::migrate::Migration::new(
                0,
                "".into(),
                MigrationType::Simple,
                AssertSqlSafe("CREATE TABLE a (x);").into_sql_str(),
                false
            )
            .checksum
            .as_ref()
        );
        assert_eq!(first.checksum.len(), 48);
        assert_eq!(parse_name("x_y.sql"), None);
        assert_eq!(parse_name("1_y.txt"), None);
    }
}
