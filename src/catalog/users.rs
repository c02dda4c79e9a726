//! Users and their privileges: InfluxDB 1.x's per-database READ, WRITE and ALL, and admins.

use super::{Catalog, CatalogError, Privilege};
use crate::clock::stamped;
use crate::proto::{
    event, Event, UserAdminSet, UserCreated, UserDropped, UserPasswordSet, UserPrivilegeSet,
};

impl Privilege {
    /// Whether holding this privilege grants `wanted` (ALL grants both halves).
    pub fn grants(self, wanted: Privilege) -> bool {
        self == Privilege::All || self == wanted
    }

    /// The privilege as InfluxDB 1.x names it in `SHOW GRANTS` and its errors.
    pub fn influx_name(self) -> &'static str {
        match self {
            Privilege::NoPrivileges => "NO PRIVILEGES",
            Privilege::Read => "READ",
            Privilege::Write => "WRITE",
            Privilege::All => "ALL PRIVILEGES",
        }
    }
}

impl Catalog {
    pub fn create_user(
        &self,
        id: String,
        name: &str,
        password_bcrypt: String,
        admin: bool,
    ) -> Result<Vec<Event>, CatalogError> {
        if name.is_empty() {
            return Err(CatalogError::InvalidName);
        }
        if self.users.contains_key(name) {
            return Err(CatalogError::UserExists);
        }
        Ok(vec![stamped(event::Kind::UserCreated(UserCreated {
            id,
            name: name.into(),
            password_bcrypt,
            admin,
            privileges: Vec::new(),
        }))])
    }

    pub fn drop_user(&self, name: &str) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        Ok(vec![stamped(event::Kind::UserDropped(UserDropped {
            name: name.into(),
        }))])
    }

    /// `GRANT privilege ON database TO name`: the privilege replaces the one held.
    pub fn grant(
        &self,
        name: &str,
        database: &str,
        privilege: Privilege,
    ) -> Result<Vec<Event>, CatalogError> {
        self.privilege_event(name, database, privilege)
    }

    /// `REVOKE privilege ON database FROM name`, as InfluxDB 1.x narrows privileges:
    /// revoking one half of ALL leaves the other, revoking what is held leaves none, and
    /// revoking what is not held changes nothing.
    pub fn revoke(
        &self,
        name: &str,
        database: &str,
        privilege: Privilege,
    ) -> Result<Vec<Event>, CatalogError> {
        let held = self.privilege(name, database);
        let left = match (privilege, held) {
            (Privilege::All, _) => Privilege::NoPrivileges,
            (Privilege::Read, Privilege::All) => Privilege::Write,
            (Privilege::Write, Privilege::All) => Privilege::Read,
            (p, h) if p == h => Privilege::NoPrivileges,
            (_, h) => h,
        };
        self.privilege_event(name, database, left)
    }

    fn privilege_event(
        &self,
        name: &str,
        database: &str,
        privilege: Privilege,
    ) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        if !self.databases.contains_key(database) {
            return Err(CatalogError::DatabaseNotFound(database.into()));
        }
        Ok(vec![stamped(event::Kind::UserPrivilegeSet(
            UserPrivilegeSet {
                name: name.into(),
                database: database.into(),
                privilege: privilege.into(),
            },
        ))])
    }

    /// `GRANT ALL PRIVILEGES TO name` (true) and `REVOKE ALL PRIVILEGES FROM name` (false).
    pub fn set_admin(&self, name: &str, admin: bool) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        Ok(vec![stamped(event::Kind::UserAdminSet(UserAdminSet {
            name: name.into(),
            admin,
        }))])
    }

    pub fn set_password(
        &self,
        name: &str,
        password_bcrypt: String,
    ) -> Result<Vec<Event>, CatalogError> {
        if !self.users.contains_key(name) {
            return Err(CatalogError::UserNotFound);
        }
        Ok(vec![stamped(event::Kind::UserPasswordSet(
            UserPasswordSet {
                name: name.into(),
                password_bcrypt,
            },
        ))])
    }

    /// The privilege a user holds on a database (none for unknown users).
    pub fn privilege(&self, name: &str, database: &str) -> Privilege {
        self.users
            .get(name)
            .and_then(|u| u.privileges.iter().find(|p| p.database == database))
            .map_or(Privilege::NoPrivileges, |p| p.privilege())
    }

    /// A user by id (tokens and v2 objects name users by id, the 1.x API by name).
    pub fn user_by_id(&self, id: &str) -> Option<&UserCreated> {
        self.users.values().find(|u| u.id == id)
    }
}
