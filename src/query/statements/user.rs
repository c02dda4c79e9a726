//! `CREATE USER`, `DROP USER`, `GRANT`, `REVOKE`, `SET PASSWORD`, `SHOW USERS` and
//! `SHOW GRANTS`: users and their privileges in the catalog. Passwords are hashed before
//! the catalog's writer is taken.

use super::{apply_decision, series, Context};
use crate::catalog::CatalogError;
use crate::query::error::QueryError;
use crate::query::parser::ast::Privilege;
use crate::query::result::Series;
use serde_json::Value;

pub(crate) async fn create(
    cx: &Context<'_>,
    name: &str,
    password: &str,
    admin: bool,
) -> Result<Vec<Series>, QueryError> {
    let hash = cx.auth.hash_password(password).await?;
    let id = crate::auth::new_id();
    apply_decision(cx.control, |c| c.create_user(id, name, hash, admin)).await
}

pub(crate) async fn drop(cx: &Context<'_>, name: &str) -> Result<Vec<Series>, QueryError> {
    apply_decision(cx.control, |c| c.drop_user(name)).await
}

pub(crate) async fn grant(
    cx: &Context<'_>,
    privilege: Privilege,
    database: &str,
    user: &str,
) -> Result<Vec<Series>, QueryError> {
    let privilege = catalog_privilege(privilege);
    apply_decision(cx.control, |c| c.grant(user, database, privilege)).await
}

pub(crate) async fn revoke(
    cx: &Context<'_>,
    privilege: Privilege,
    database: &str,
    user: &str,
) -> Result<Vec<Series>, QueryError> {
    let privilege = catalog_privilege(privilege);
    apply_decision(cx.control, |c| c.revoke(user, database, privilege)).await
}

/// `GRANT ALL PRIVILEGES` (`admin`) or `REVOKE ALL PRIVILEGES`.
pub(crate) async fn set_admin(
    cx: &Context<'_>,
    user: &str,
    admin: bool,
) -> Result<Vec<Series>, QueryError> {
    apply_decision(cx.control, |c| c.set_admin(user, admin)).await
}

pub(crate) async fn set_password(
    cx: &Context<'_>,
    name: &str,
    password: &str,
) -> Result<Vec<Series>, QueryError> {
    let hash = cx.auth.hash_password(password).await?;
    apply_decision(cx.control, |c| c.set_password(name, hash)).await
}

pub(crate) async fn show_grants(cx: &Context<'_>, name: &str) -> Result<Vec<Series>, QueryError> {
    let rows = cx
        .control
        .read(|c| {
            let c = &c.catalog;
            let user = c.users.get(name).ok_or(CatalogError::UserNotFound)?;
            Ok::<_, QueryError>(
                user.privileges
                    .iter()
                    .map(|p| {
                        vec![
                            Value::from(p.database.clone()),
                            Value::from(p.privilege().influx_name()),
                        ]
                    })
                    .collect(),
            )
        })
        .await?;
    Ok(vec![series("", &["database", "privilege"], rows)])
}

pub(crate) async fn show(cx: &Context<'_>) -> Result<Vec<Series>, QueryError> {
    let rows = cx
        .control
        .read(|c| {
            let c = &c.catalog;
            c.users
                .values()
                .map(|u| vec![Value::from(u.name.clone()), Value::from(u.admin)])
                .collect()
        })
        .await;
    Ok(vec![series("", &["user", "admin"], rows)])
}

fn catalog_privilege(p: Privilege) -> crate::catalog::Privilege {
    match p {
        Privilege::Read => crate::catalog::Privilege::Read,
        Privilege::Write => crate::catalog::Privilege::Write,
        Privilege::All => crate::catalog::Privilege::All,
    }
}
