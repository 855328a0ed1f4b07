//! tower-sessions' store on our SQLite file (`db::auth` sessions). Session ids are
//! kept as SHA-256 of the cookie value; the user id is copied out of the record so
//! "log out everywhere" and a password reset can end a user's sessions in SQL.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, Error};

use crate::auth::secret;
use crate::db::{self, Db};

/// Session data key holding the user id.
pub const USER_ID: &str = "user_id";

#[derive(Clone)]
pub struct DbStore {
    pub db: Db,
}

impl std::fmt::Debug for DbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbStore")
    }
}

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

fn id_hash(id: &Id) -> String {
    secret::digest(&id.to_string())
}

fn row(record: &Record) -> session_store::Result<(String, Option<i64>, String, i64)> {
    let data = serde_json::to_string(&record.data).map_err(backend)?;
    let user_id = record.data.get(USER_ID).and_then(serde_json::Value::as_i64);
    let expires_at = i64::try_from(record.expiry_date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    Ok((id_hash(&record.id), user_id, data, expires_at))
}

#[async_trait]
impl tower_sessions::SessionStore for DbStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let (hash, user_id, data, expires_at) = row(record)?;
            let saved = self
                .db
                .write(move |tx| db::auth::create_session(tx, &hash, user_id, &data, expires_at))
                .await
                .map_err(backend)?;
            if saved {
                return Ok(());
            }
            // A 128-bit id collision: draw another.
            record.id = Id::default();
        }
    }

    /// Updates only: a session ended while this request ran stays ended (a new one
    /// is made by `create`, which tower-sessions calls when the id is new).
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (hash, user_id, data, expires_at) = row(record)?;
        self.db
            .write(move |tx| db::auth::update_session(tx, &hash, user_id, &data, expires_at))
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let hash = id_hash(id);
        let now_ms = db::to_ms(chrono::Utc::now());
        let Some(found) = self.db.read(move |c| db::auth::session(c, &hash, now_ms)).await.map_err(backend)? else {
            return Ok(None);
        };
        let data = serde_json::from_str(&found.data).map_err(backend)?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(found.expires_at) * 1_000_000)
            .map_err(backend)?;
        Ok(Some(Record { id: *id, data, expiry_date }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let hash = id_hash(id);
        self.db.write(move |tx| db::auth::delete_session(tx, &hash)).await.map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sessions::SessionStore;

    /// A request that loaded its session before a logout (or "log out everywhere")
    /// and saves it afterwards must not bring the ended session back.
    #[tokio::test]
    async fn saving_never_resurrects_an_ended_session() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.db")).unwrap();
        let now = db::to_ms(chrono::Utc::now());
        let user = db.write(move |tx| db::auth::create_user(tx, "alice", "x", now)).await.unwrap();
        let store = DbStore { db: db.clone() };
        let mut data = std::collections::HashMap::new();
        data.insert(USER_ID.to_string(), serde_json::json!(user));
        let expiry_date = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let mut record = Record { id: Id::default(), data, expiry_date };
        store.create(&mut record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_some());
        record.data.insert("seen_at".into(), serde_json::json!(now));
        store.save(&record).await.unwrap();
        assert_eq!(store.load(&record.id).await.unwrap().unwrap().data["seen_at"], now, "a live session saves");

        db.write(move |tx| db::auth::end_sessions_of(tx, user)).await.unwrap();
        store.save(&record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_none(), "log out everywhere sticks");
        let mut other = Record { id: Id::default(), data: record.data.clone(), expiry_date };
        store.create(&mut other).await.unwrap();
        store.delete(&other.id).await.unwrap();
        store.save(&other).await.unwrap();
        assert!(store.load(&other.id).await.unwrap().is_none(), "logout sticks");
    }
}
