//! WebSub subscriptions (`daemon/websub.rs`): one key per subscription, `wsub/{token}`, its
//! [`Subscription`] as JSON. Small writes, flushed with the store's own flushes.

use super::keys::{self, encode};
use super::{Store, StoreError};
use crate::model::Subscription;

impl Store {
    /// Every value under `prefix`, decoded (the WebSub records, both sides).
    pub(super) fn scan_decoded<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for item in self.db()?.scan_prefix(prefix) {
            let (k, v) = item?;
            out.push(keys::decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Every stored subscription.
    pub fn websub_subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.reading(|| self.scan_decoded(keys::WEBSUB))
    }

    /// Writes (or replaces) a subscription.
    pub fn save_websub(&self, sub: &Subscription) -> Result<(), StoreError> {
        self.writing(|| {
            self.db()?
                .insert(keys::websub_key(&sub.token), encode(sub))?;
            Ok(())
        })
    }

    /// Removes a subscription.
    pub fn delete_websub(&self, token: &str) -> Result<(), StoreError> {
        self.writing(|| {
            self.db()?.remove(keys::websub_key(token))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Subscription, SubscriptionState};
    use crate::store::Store;

    #[test]
    fn subscriptions_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1 << 20).unwrap();
        let sub = Subscription {
            token: "t1".into(),
            source: "s".into(),
            source_url: "https://example.org/feed".into(),
            callback: "https://feeds.example/websub/callback/t1".into(),
            hub: "https://hub.example/".into(),
            topic: "https://example.org/feed".into(),
            secret: Some("k".into()),
            state: SubscriptionState::Pending,
            pending: Some("subscribe".into()),
            reason: None,
            requested: None,
            lease_end: None,
            last_delivery: None,
            deliveries: 0,
            rejected: 0,
            document_self: None,
        };
        store.save_websub(&sub).unwrap();
        assert_eq!(store.websub_subscriptions().unwrap(), vec![sub]);
        store.delete_websub("t1").unwrap();
        assert!(store.websub_subscriptions().unwrap().is_empty());
        assert!(store.source_states().unwrap().is_empty());
    }
}
