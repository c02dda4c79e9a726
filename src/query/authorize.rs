//! Which privilege each statement needs, and whether a caller holds it: InfluxDB 1.x's
//! rules. A query is refused as a whole, before any statement runs, when one of its
//! statements needs more than the caller holds.

use super::parser::ast::{Source, Statement};
use crate::auth::{AuthError, Principal};
use crate::catalog::{Catalog, Privilege};

/// What a statement needs.
#[derive(Debug, PartialEq, Eq)]
enum Required {
    Nothing,
    Admin,
    /// On a database; "" stands for the query's `db` parameter.
    On(Privilege, String),
}

/// Refuses the statements a non-admin caller may not run.
pub(super) fn check(
    catalog: &Catalog,
    principal: &Principal,
    statements: &[Statement],
    default_database: Option<&str>,
) -> Result<(), AuthError> {
    if principal.admin {
        return Ok(());
    }
    for statement in statements {
        for required in required(statement) {
            let refused = |needs: String| AuthError::NotPermitted {
                user: principal.user.clone(),
                statement: statement.to_string(),
                needs,
            };
            match required {
                Required::Nothing => {}
                Required::Admin => return Err(refused("admin privilege".into())),
                Required::On(privilege, database) => {
                    let database = match database.is_empty() {
                        true => default_database.unwrap_or_default().to_owned(),
                        false => database,
                    };
                    if !principal.privilege(catalog, &database).grants(privilege) {
                        let name = privilege.influx_name();
                        return Err(refused(format!("{name} on {database}")));
                    }
                }
            }
        }
    }
    Ok(())
}

fn required(statement: &Statement) -> Vec<Required> {
    let read = |db: &Option<String>| Required::On(Privilege::Read, db.clone().unwrap_or_default());
    match statement {
        // As 1.x: what the SELECT it explains needs (WRITE on an INTO's database too,
        // though EXPLAIN ANALYZE writes nothing).
        Statement::Select(s) | Statement::Explain { statement: s, .. } => {
            let mut needs = Vec::new();
            sources(&s.sources, &mut needs);
            if let Some(target) = &s.target {
                needs.push(Required::On(
                    Privilege::Write,
                    target.database.clone().unwrap_or_default(),
                ));
            }
            needs
        }
        Statement::ShowDatabases => vec![Required::Nothing],
        Statement::ShowMeasurements(s) => vec![read(&s.database)],
        Statement::ShowSeries(s) => vec![read(&s.database)],
        Statement::ShowTagKeys(s) => vec![read(&s.database)],
        Statement::ShowTagValues(s) => vec![read(&s.database)],
        Statement::ShowFieldKeys(s) => vec![read(&s.database)],
        Statement::ShowCardinality(s) => vec![read(&s.database)],
        Statement::ShowRetentionPolicies { database } => vec![read(database)],
        Statement::Delete(_) | Statement::DropSeries(_) => {
            vec![Required::On(Privilege::Write, String::new())]
        }
        // As 1.x: WRITE on the query's database to create or drop one, READ (on the
        // request's database) to list them.
        Statement::CreateContinuousQuery(s) => {
            vec![Required::On(Privilege::Write, s.database.clone())]
        }
        Statement::DropContinuousQuery { database, .. } => {
            vec![Required::On(Privilege::Write, database.clone())]
        }
        Statement::ShowContinuousQueries => vec![read(&None)],
        // As 1.x: READ on the request's database lists the queries running.
        Statement::ShowQueries => vec![read(&None)],
        _ => vec![Required::Admin],
    }
}

/// READ on the database of every measurement read, subqueries included.
fn sources(sources: &[Source], needs: &mut Vec<Required>) {
    for source in sources {
        match source {
            Source::Measurement(m) => needs.push(Required::On(
                Privilege::Read,
                m.database.clone().unwrap_or_default(),
            )),
            Source::Subquery(s) => self::sources(&s.sources, needs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogError;
    use crate::projection::Projection;
    use crate::proto::Event;
    use crate::query::parser::parse_query;

    fn apply(c: &mut Catalog, decide: impl FnOnce(&Catalog) -> Result<Vec<Event>, CatalogError>) {
        for e in decide(c).unwrap() {
            c.apply(&e);
        }
    }

    fn check_as(catalog: &Catalog, q: &str, db: Option<&str>) -> Result<(), String> {
        let principal = Principal {
            user: "bob".into(),
            user_id: "1".into(),
            admin: false,
            scope: None,
        };
        check(catalog, &principal, &parse_query(q).unwrap(), db).map_err(|e| e.to_string())
    }

    fn refusal(statement: &str, needs: &str) -> Result<(), String> {
        Err(format!("error authorizing query: bob not authorized to execute statement '{statement}', requires {needs}"))
    }

    #[test]
    fn statements_need_what_influxdb_1x_asks() {
        let mut c = Catalog::default();
        apply(&mut c, |c| c.create_database("db1", None));
        apply(&mut c, |c| c.create_database("db2", None));
        apply(&mut c, |c| {
            c.create_user("1".into(), "bob", "hash".into(), false)
        });
        apply(&mut c, |c| c.grant("bob", "db1", Privilege::Read));
        apply(&mut c, |c| c.grant("bob", "db2", Privilege::Write));

        assert_eq!(check_as(&c, "SELECT * FROM cpu", Some("db1")), Ok(()));
        assert_eq!(check_as(&c, "SHOW TAG KEYS ON db1", None), Ok(()));
        assert_eq!(check_as(&c, "SHOW DATABASES", None), Ok(()));
        assert_eq!(check_as(&c, "DELETE FROM cpu", Some("db2")), Ok(()));
        let q = "SELECT * FROM db2..cpu";
        assert_eq!(check_as(&c, q, Some("db1")), refusal(q, "READ on db2"));
        let q = "SELECT * FROM (SELECT * FROM db2..cpu)";
        assert_eq!(check_as(&c, q, Some("db1")), refusal(q, "READ on db2"));
        let q = "SELECT * FROM cpu";
        assert_eq!(check_as(&c, q, None), refusal(q, "READ on "));
        let q = "DROP SERIES FROM cpu";
        assert_eq!(check_as(&c, q, Some("db1")), refusal(q, "WRITE on db1"));
        let q = "DROP MEASUREMENT cpu";
        assert_eq!(check_as(&c, q, Some("db2")), refusal(q, "admin privilege"));
        let q = "SHOW USERS";
        assert_eq!(check_as(&c, q, None), refusal(q, "admin privilege"));
        // EXPLAIN needs what the SELECT it explains needs.
        let q = "EXPLAIN ANALYZE SELECT * FROM cpu";
        assert_eq!(check_as(&c, q, Some("db1")), Ok(()));
        assert_eq!(check_as(&c, q, Some("db2")), refusal(q, "READ on db2"));
        let q = "EXPLAIN SELECT * INTO db2..copy FROM cpu";
        assert_eq!(check_as(&c, q, Some("db1")), Ok(()));
        let q = "EXPLAIN SELECT * INTO copy FROM cpu";
        assert_eq!(check_as(&c, q, Some("db1")), refusal(q, "WRITE on db1"));

        // ALL grants both halves; revoking one half leaves the other.
        apply(&mut c, |c| c.grant("bob", "db2", Privilege::All));
        assert_eq!(check_as(&c, "SELECT * FROM cpu", Some("db2")), Ok(()));
        apply(&mut c, |c| c.revoke("bob", "db2", Privilege::Read));
        assert_eq!(c.privilege("bob", "db2"), Privilege::Write);
        apply(&mut c, |c| c.revoke("bob", "db2", Privilege::Read));
        assert_eq!(c.privilege("bob", "db2"), Privilege::Write);
        apply(&mut c, |c| c.revoke("bob", "db2", Privilege::Write));
        assert_eq!(c.privilege("bob", "db2"), Privilege::NoPrivileges);
        assert_eq!(
            c.grant("bob", "nodb", Privilege::Read)
                .unwrap_err()
                .to_string(),
            "database not found: nodb"
        );
        assert_eq!(
            c.grant("nobody", "db1", Privilege::Read)
                .unwrap_err()
                .to_string(),
            "user not found"
        );
        // Dropping a database drops the privileges on it.
        apply(&mut c, |c| Ok(c.drop_database("db1")));
        assert_eq!(c.privilege("bob", "db1"), Privilege::NoPrivileges);
    }
}
