//! What a principal may do: InfluxDB 1.x's privileges for data, InfluxDB 2's permissions
//! (an action on a resource type, narrowed to an organization and an object) for the v2
//! management API.
//!
//! Architecture invariant: rights are decided against the catalog of the request being
//! answered, never copied into a token. A token's permissions only narrow what its user
//! holds at that moment, so a REVOKE, a DROP USER or a lost admin flag takes effect on
//! the next request.

use super::Principal;
use crate::catalog::{Catalog, Privilege};
use crate::proto::{TokenCreated, TokenPermission};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Read,
    Write,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Action> {
        match s {
            "read" => Some(Action::Read),
            "write" => Some(Action::Write),
            _ => None,
        }
    }

    fn privilege(self) -> Privilege {
        match self {
            Action::Read => Privilege::Read,
            Action::Write => Privilege::Write,
        }
    }
}

/// The v2 resource types shardkeeper has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Authorizations,
    Buckets,
    Orgs,
    Users,
    Remotes,
    Replications,
}

impl Resource {
    pub(crate) const ALL: [Resource; 6] = [
        Resource::Authorizations,
        Resource::Buckets,
        Resource::Orgs,
        Resource::Users,
        Resource::Remotes,
        Resource::Replications,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Resource::Authorizations => "authorizations",
            Resource::Buckets => "buckets",
            Resource::Orgs => "orgs",
            Resource::Users => "users",
            Resource::Remotes => "remotes",
            Resource::Replications => "replications",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One permission asked about: `action` on `resource`, in organization `org_id` (None:
/// across organizations), on object `id` (None: every object of the type there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted<'a> {
    pub action: Action,
    pub resource: Resource,
    pub org_id: Option<&'a str>,
    pub id: Option<&'a str>,
}

impl Wanted<'_> {
    /// As InfluxDB 2 names a permission in its refusals: `write:orgs/ID/buckets/ID`.
    pub(crate) fn describe(&self) -> String {
        let mut s = format!("{}:", self.action.as_str());
        if let Some(org) = self.org_id.filter(|_| self.resource != Resource::Orgs) {
            s.push_str(&format!("orgs/{org}/"));
        }
        s.push_str(self.resource.as_str());
        if let Some(id) = self
            .id
            .or(self.org_id.filter(|_| self.resource == Resource::Orgs))
        {
            s.push_str(&format!("/{id}"));
        }
        s
    }
}

/// Whether a listed permission covers the one wanted: same action and type, and no
/// narrower organization or object than asked for.
fn covers(listed: &TokenPermission, wanted: &Wanted) -> bool {
    let org_ok = listed.org_id.is_empty() || wanted.org_id == Some(listed.org_id.as_str());
    let id_ok = listed.id.is_empty() || wanted.id == Some(listed.id.as_str());
    listed.action == wanted.action.as_str()
        && listed.resource_type == wanted.resource.as_str()
        && org_ok
        && id_ok
}

/// What both privileges grant.
fn intersect(a: Privilege, b: Privilege) -> Privilege {
    match (a, b) {
        (Privilege::All, x) | (x, Privilege::All) => x,
        (x, y) if x == y => x,
        _ => Privilege::NoPrivileges,
    }
}

/// What both privileges together grant.
fn union(a: Privilege, b: Privilege) -> Privilege {
    match (a, b) {
        (Privilege::NoPrivileges, x) | (x, Privilege::NoPrivileges) => x,
        (x, y) if x == y => x,
        _ => Privilege::All,
    }
}

impl Principal {
    /// Whether the caller's user is, right now, a 1.x admin (or the setup operator).
    fn user_is_admin(&self, catalog: &Catalog) -> bool {
        catalog
            .users
            .get(&self.user)
            .is_some_and(|u| u.id == self.user_id && u.admin)
    }

    /// The 1.x privilege the caller holds on `database` now: its user's, narrowed by the
    /// token's bucket permissions.
    pub(crate) fn privilege(&self, catalog: &Catalog, database: &str) -> Privilege {
        let Some(user) = catalog
            .users
            .get(&self.user)
            .filter(|u| u.id == self.user_id)
        else {
            return Privilege::NoPrivileges;
        };
        let held = match user.admin {
            true => Privilege::All,
            false => catalog.privilege(&self.user, database),
        };
        let Some(scope) = &self.scope else {
            return held;
        };
        let granted = scope
            .iter()
            .filter(|p| p.resource_type == Resource::Buckets.as_str())
            .filter(|p| bucket_permission_reaches(catalog, p, database))
            .filter_map(|p| Action::parse(&p.action))
            .fold(Privilege::NoPrivileges, |acc, a| union(acc, a.privilege()));
        intersect(held, granted)
    }

    /// Whether the caller holds the v2 permission `wanted` now. An admin user holds every
    /// permission; any other user holds read and write on the buckets whose database it
    /// has READ or WRITE on, and read on the organizations of those buckets; a token holds
    /// what both its user and its own permission list allow.
    pub(crate) fn holds(&self, catalog: &Catalog, wanted: &Wanted) -> bool {
        let user_holds = self.user_is_admin(catalog)
            || match wanted.resource {
                Resource::Buckets => wanted
                    .id
                    .and_then(|id| catalog.buckets.get(id))
                    .is_some_and(|b| {
                        catalog
                            .privilege(&self.user, &b.database)
                            .grants(wanted.action.privilege())
                    }),
                Resource::Orgs => {
                    let org = wanted.id.or(wanted.org_id);
                    wanted.action == Action::Read
                        && org.is_some_and(|org| {
                            catalog.buckets.values().any(|b| {
                                b.org_id == org
                                    && catalog.privilege(&self.user, &b.database)
                                        != Privilege::NoPrivileges
                            })
                        })
                }
                // A remote holds another instance's token, and a replication copies a
                // bucket elsewhere: an admin's to read and change, as authorizations are.
                Resource::Authorizations
                | Resource::Users
                | Resource::Remotes
                | Resource::Replications => false,
            };
        user_holds && self.scope_allows(wanted)
    }

    /// Whether the token's own permission list allows `wanted` (always, for a password
    /// or an unrestricted token).
    pub(crate) fn scope_allows(&self, wanted: &Wanted) -> bool {
        self.scope.as_ref().is_none_or(|scope| {
            scope.iter().any(|p| {
                covers(p, wanted)
                    // An organization is named by its id as an object of type orgs.
                    || (wanted.resource == Resource::Orgs
                        && p.resource_type == Resource::Orgs.as_str()
                        && p.action == wanted.action.as_str()
                        && p.id.is_empty()
                        && !p.org_id.is_empty()
                        && wanted.id == Some(p.org_id.as_str()))
            })
        })
    }
}

/// What a token may do now: its own list, or for a token that may do all its user may,
/// everything in its organization (an admin's) or the buckets its user holds grants on.
pub(crate) fn effective_permissions(c: &Catalog, t: &TokenCreated) -> Vec<TokenPermission> {
    if !t.permissions.is_empty() {
        return t.permissions.clone();
    }
    let permission = |action: Action, resource: Resource, id: &str| TokenPermission {
        action: action.as_str().into(),
        resource_type: resource.as_str().into(),
        org_id: match resource {
            Resource::Orgs => String::new(),
            _ => t.org_id.clone(),
        },
        id: id.into(),
    };
    let Some(user) = c.user_by_id(&t.user_id) else {
        return Vec::new();
    };
    let mut all = Vec::new();
    if user.admin {
        for resource in Resource::ALL {
            let id = if resource == Resource::Orgs {
                t.org_id.as_str()
            } else {
                ""
            };
            all.push(permission(Action::Read, resource, id));
            all.push(permission(Action::Write, resource, id));
        }
        return all;
    }
    for b in c.buckets.values().filter(|b| b.org_id == t.org_id) {
        let held = c.privilege(&user.name, &b.database);
        for action in [Action::Read, Action::Write] {
            if held.grants(action.privilege()) {
                all.push(permission(action, Resource::Buckets, &b.id));
            }
        }
    }
    all
}

/// Whether a bucket permission reaches a database: its bucket's, those of its
/// organization's buckets, or every database when it names neither.
fn bucket_permission_reaches(catalog: &Catalog, p: &TokenPermission, database: &str) -> bool {
    if !p.id.is_empty() {
        return catalog
            .buckets
            .get(&p.id)
            .is_some_and(|b| b.database == database);
    }
    if p.org_id.is_empty() {
        return true;
    }
    catalog
        .buckets
        .values()
        .any(|b| b.org_id == p.org_id && b.database == database)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::Projection;
    use crate::proto::Event;

    fn apply(c: &mut Catalog, decide: impl FnOnce(&Catalog) -> Vec<Event>) {
        for e in &decide(c) {
            c.apply(e);
        }
    }

    fn permission(action: &str, resource: &str, org: &str, id: &str) -> TokenPermission {
        TokenPermission {
            action: action.into(),
            resource_type: resource.into(),
            org_id: org.into(),
            id: id.into(),
        }
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        apply(&mut c, |c| {
            c.create_user("u1".into(), "ann", "h".into(), false)
                .unwrap()
        });
        apply(&mut c, |c| {
            c.create_user("u2".into(), "root", "h".into(), true)
                .unwrap()
        });
        apply(&mut c, |c| c.create_org("o1".into(), "acme").unwrap());
        apply(&mut c, |c| {
            c.create_bucket("b1".into(), "o1", "metrics", 0).unwrap()
        });
        apply(&mut c, |c| {
            c.create_bucket("b2".into(), "o1", "logs", 0).unwrap()
        });
        apply(&mut c, |c| {
            c.grant("ann", "metrics", Privilege::Read).unwrap()
        });
        c
    }

    fn principal(user: &str, id: &str, scope: Option<Vec<TokenPermission>>) -> Principal {
        Principal {
            user: user.into(),
            user_id: id.into(),
            admin: false,
            scope,
        }
    }

    #[test]
    fn a_token_never_holds_more_than_its_user_holds_now() {
        let mut c = catalog();
        let wide = Some(vec![
            permission("read", "buckets", "", ""),
            permission("write", "buckets", "", ""),
        ]);
        let ann = principal("ann", "u1", wide);
        assert_eq!(ann.privilege(&c, "metrics"), Privilege::Read);
        assert_eq!(ann.privilege(&c, "logs"), Privilege::NoPrivileges);
        let read_b1 = Wanted {
            action: Action::Read,
            resource: Resource::Buckets,
            org_id: Some("o1"),
            id: Some("b1"),
        };
        assert!(ann.holds(&c, &read_b1));
        assert!(!ann.holds(
            &c,
            &Wanted {
                action: Action::Write,
                ..read_b1
            }
        ));
        apply(&mut c, |c| {
            c.revoke("ann", "metrics", Privilege::Read).unwrap()
        });
        assert_eq!(ann.privilege(&c, "metrics"), Privilege::NoPrivileges);
        assert!(!ann.holds(&c, &read_b1));
    }

    #[test]
    fn a_narrow_token_of_an_admin_is_not_an_admin() {
        let c = catalog();
        let scoped = principal(
            "root",
            "u2",
            Some(vec![permission("read", "buckets", "o1", "b2")]),
        );
        assert_eq!(scoped.privilege(&c, "logs"), Privilege::Read);
        assert_eq!(scoped.privilege(&c, "metrics"), Privilege::NoPrivileges);
        assert_eq!(
            principal("root", "u2", None).privilege(&c, "metrics"),
            Privilege::All
        );
        // A user dropped and created again under the same name is someone else.
        assert_eq!(
            principal("root", "old-id", None).privilege(&c, "metrics"),
            Privilege::NoPrivileges
        );
    }

    #[test]
    fn permissions_are_named_as_influxdb_2_names_them() {
        let w = Wanted {
            action: Action::Write,
            resource: Resource::Buckets,
            org_id: Some("o1"),
            id: None,
        };
        assert_eq!(w.describe(), "write:orgs/o1/buckets");
        let w = Wanted {
            action: Action::Write,
            resource: Resource::Orgs,
            org_id: None,
            id: None,
        };
        assert_eq!(w.describe(), "write:orgs");
    }
}
